#!/usr/bin/env node
/** makemap(8): compile a table(5) text file into the SQLite db the `db` backend reads, or dump one back (OpenSMTPD's Berkeley DB files too). */
import { renameSync, readFileSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { parseAliasTarget, splitAliasList } from '../table/alias.js';
import { DB_SCHEMA, readDb } from '../table/db.js';
import { parseTableText, splitEntry, TableFormatError } from '../table/file-format.js';

interface Args { dump: boolean; type: 'aliases' | 'set' | 'map'; out?: string; file: string; help?: boolean }

const USAGE = 'usage: makemap [-hU] [-t aliases|set] [-o dbfile] file';
const HELP = `${USAGE}
  -h, --help   print this help and exit
  -o dbfile    the file to write (default: file.db)
  -t aliases   an aliases(5) file: every target of every alias is checked
  -t set       a list: every line is a key
  -U           dump dbfile (tsmtpd's own, or a Berkeley DB hash file made by OpenSMTPD's makemap)
Without -t, the first entry decides list or mapping, as table(5) files. The file written is
tsmtpd's own (SQLite); db: tables read it and OpenSMTPD's Berkeley DB files alike.
Exit status: 0 success, 1 an error (with file:line for a malformed entry).
`;

function parseArgs(argv: string[]): Args | string {
  const a: Partial<Args> = { dump: false, type: 'map' };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i]!;
    if (v === '-h' || v === '--help') return { ...a, file: '', help: true } as Args;
    if (v === '-U') a.dump = true;
    else if (v === '-t') {
      const t = argv[++i];
      if (t !== 'aliases' && t !== 'set') return `invalid type: ${t ?? ''}`;
      a.type = t;
    } else if (v === '-o') {
      const o = argv[++i];
      if (!o) return '-o needs a file';
      a.out = o;
    } else if (v.startsWith('-') && v !== '-') return `unknown option ${v}`;
    else if (a.file) return 'only one file';
    else a.file = v;
  }
  if (!a.file) return USAGE;
  return a as Args;
}

/** Build into a temp file beside the target, then rename, so readers never see a half-written db. */
function build(args: Args): number {
  const text = readFileSync(args.file, 'utf8');
  const parsed = parseTableText(text, args.file, args.type === 'set' ? 'list' : args.type === 'aliases' ? 'map' : undefined);
  if (args.type === 'aliases') {
    // every target of every alias must parse: a typo is reported now, not at delivery time
    const lines = text.split('\n');
    let bad = 0;
    lines.forEach((l, i) => {
      const t = l.trim();
      if (t === '' || t.startsWith('#')) return;
      for (const item of splitAliasList(splitEntry(t).value)) {
        if (parseAliasTarget(item) === null) {
          process.stderr.write(`${args.file}:${i + 1}: invalid alias target: ${item}\n`);
          bad++;
        }
      }
    });
    if (bad) return 1;
  }
  const entries: [string, string][] = parsed.kind === 'map' ? [...parsed.entries] : parsed.keys.map((k) => [k, '']);
  const out = args.out ?? `${args.file}.db`;
  const tmp = `${out}.tmp.${process.pid}`;
  try {
    const db = new Database(tmp);
    for (const s of DB_SCHEMA) db.exec(s);
    db.prepare("INSERT INTO meta (name, value) VALUES ('kind', ?)").run(parsed.kind);
    const ins = db.prepare('INSERT OR REPLACE INTO entries (key, value) VALUES (?, ?)');
    db.transaction(() => { for (const [k, v] of entries) ins.run(k, v); })();
    db.close();
    renameSync(tmp, out);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  return 0;
}

function dump(args: Args): number {
  const c = readDb(args.file);
  for (const [k, v] of c.entries) process.stdout.write(c.kind === 'list' ? `${k}\n` : `${k}\t${v}\n`);
  return 0;
}

function main(argv: string[]): number {
  const args = parseArgs(argv);
  if (typeof args === 'string') {
    process.stderr.write(`makemap: ${args}\n`);
    return 1;
  }
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  try {
    return args.dump ? dump(args) : build(args);
  } catch (e) {
    // a TableFormatError already reads `file:line: message`
    process.stderr.write(`${e instanceof TableFormatError ? '' : 'makemap: '}${(e as Error).message}\n`);
    return 1;
  }
}

process.exitCode = main(process.argv.slice(2));
