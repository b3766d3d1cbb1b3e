/** Shared fixtures for table tests: temp dirs and builders for each backend over the same content. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { DB_SCHEMA } from '../../src/table/db.js';
import { openTable } from '../../src/table/table.js';
import type { Table } from '../../src/table/types.js';

export const FIXTURES = join(fileURLToPath(new URL('.', import.meta.url)), '../../../test/table/fixtures');

export async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-table-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export function toText(entries: [string, string][]): string {
  return '# test table\n\n' + entries.map(([k, v]) => `${k}\t${v}`).join('\n') + '\n';
}

export function writeDb(path: string, entries: [string, string][]): void {
  const db = new Database(path);
  for (const s of DB_SCHEMA) db.exec(s);
  db.prepare("INSERT INTO meta VALUES ('kind', 'map')").run();
  const ins = db.prepare('INSERT INTO entries VALUES (?, ?)');
  for (const [k, v] of entries) ins.run(k.toLowerCase(), v);
  db.close();
}

/** A table-sqlite config where every service reads one key/value table. */
export async function writeSqlite(dir: string, entries: [string, string][]): Promise<string> {
  const dbpath = join(dir, 'kv.sqlite');
  const db = new Database(dbpath);
  db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)');
  const ins = db.prepare('INSERT INTO kv VALUES (?, ?)');
  for (const [k, v] of entries) ins.run(k.toLowerCase(), v);
  db.close();
  const q = 'SELECT v FROM kv WHERE k = ?';
  const conf = [`dbpath ${dbpath}`, ...['alias', 'domain', 'credentials', 'userinfo', 'string', 'mailaddrmap'].map((s) => `query_${s} ${q}`),
    "fetch_source SELECT k FROM kv WHERE k LIKE '%.%.%.%'"].join('\n');
  const path = join(dir, 'sqlite.conf');
  await writeFile(path, conf + '\n');
  return path;
}

export async function procCommand(dir: string, entries: [string, string][]): Promise<string> {
  const path = join(dir, 'data.json');
  await writeFile(path, JSON.stringify(Object.fromEntries(entries)));
  return `exec '${process.execPath}' '${join(FIXTURES, 'table.mjs')}' '${path}'`;
}

export type Maker = (dir: string, entries: [string, string][]) => Promise<Table>;

export const MAKERS: Record<string, Maker> = {
  static: (_d, e) => openTable({ name: 't', backend: 'static', config: '', inline: { kind: 'map', entries: e } }),
  file: async (d, e) => {
    const p = join(d, 'table.txt');
    await writeFile(p, toText(e));
    return openTable({ name: 't', backend: 'file', config: p });
  },
  db: async (d, e) => {
    const p = join(d, 'table.db');
    writeDb(p, e);
    return openTable({ name: 't', backend: 'db', config: p });
  },
  sqlite: async (d, e) => openTable({ name: 't', backend: 'sqlite', config: await writeSqlite(d, e) }),
  proc: async (d, e) => openTable({ name: 't', backend: 'proc', config: await procCommand(d, e) }, { timeoutMs: 3000 }),
};
