#!/usr/bin/env node
/**
 * tsmtpctl: OpenSMTPD's smtpctl for tsmtpd. Talks to the daemon's control socket; `encrypt`
 * works without a daemon. Exit 0 on success, 1 when the daemon refused or is not running,
 * 2 on a usage error.
 */
import { basename, join } from 'node:path';
import { createResolver } from '../dns/index.js';
import { spfWalk } from '../control/spf-walk.js';
import { parseArgs } from 'node:util';
import bcrypt from 'bcryptjs';
import { ControlClient, ControlPermissionError, DaemonNotRunningError } from '../control/client.js';
import { formatStats, MONITOR_HEADER, monitorRow, sumByKey, type StatLine } from '../control/format.js';
import { commandSynopses, SUBSYSTEMS_LINE } from '../control/help.js';
import { CONTROL_SOCKET, QUERY_SOCKET } from '../control/role.js';
import { clientSpool } from '../daemon/spool.js';

const USAGE = 'usage: tsmtpctl [-h] [--json] [--resolver addr:port] [--spool dir] command [argument ...]';

const HELP = `${USAGE}
  -h, --help            print this help and exit
  --json                print the answer of a show command as JSON
  --resolver addr:port  the DNS server spf walk asks (default: /etc/resolv.conf)
  --spool dir           the daemon's spool, where its control socket is (default: TSMTPD_SPOOL,
                        else /var/spool/tsmtpd when it exists, else ./spool)
Commands may be abbreviated to any unique prefix; "tsmtpctl help" lists them.
Invoked as mailq (tsmtpd-mailq) it is "show queue", as newaliases (tsmtpd-newaliases) "update table aliases".
Exit status: 0 success, 1 the daemon refused or is not running, 2 usage error.
`;

function help(): void {
  process.stdout.write(`commands:\n${commandSynopses().map((s) => `  ${s}`).join('\n')}\n${SUBSYSTEMS_LINE}\n`);
}

function die(code: number, message: string): never {
  process.stderr.write(`tsmtpctl: ${message}\n`);
  process.exit(code);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** `encrypt [string]`: a bcrypt hash for credentials tables, as OpenBSD's smtpctl prints it. */
async function encrypt(args: string[]): Promise<void> {
  const secret = args.length > 0 ? args.join(' ') : (await readStdin()).replace(/\r?\n$/, '');
  process.stdout.write(bcrypt.hashSync(secret, 10).replace(/^\$2a\$/, '$2b$') + '\n');
}

function print(words: string[], data: unknown, json: boolean): void {
  if (json || typeof data !== 'object' || data === null) {
    // --json is the data alone: the text rendering is for people
    const { text: _text, ...rest } = (typeof data === 'object' && data !== null ? data : { value: data }) as { text?: string };
    process.stdout.write(JSON.stringify(typeof data === 'object' && data !== null ? rest : data, null, json ? 2 : 0) + '\n');
    return;
  }
  if (words[0]?.startsWith('sh') && words[1]?.startsWith('st') && 'stats' in data) {
    return void process.stdout.write(formatStats(data as { uptime: number; stats: StatLine[] }));
  }
  const text = (data as { text?: string }).text;
  process.stdout.write(text !== undefined ? text : JSON.stringify(data) + '\n');
}

/** A listing that arrives in parts (`show queue`) is written as it comes: lines, or one JSON object built up. */
class StreamedListing {
  started = false;
  private count = 0;
  constructor(private readonly json: boolean) {}

  /** A part has its text and one list: the envelopes, or only their lines (the mailq socket). */
  part(p: { envelopes?: unknown[]; lines?: string[]; text: string }): void {
    if (!this.json) {
      this.started = true;
      return void process.stdout.write(p.text);
    }
    const key = p.envelopes ? 'envelopes' : 'lines';
    if (!this.started) process.stdout.write(`{"${key}":[`);
    this.started = true;
    for (const e of p[key] ?? []) process.stdout.write((this.count++ ? ',\n' : '\n') + JSON.stringify(e));
  }

  end(): void {
    if (this.json) process.stdout.write('\n]}\n');
  }
}

async function monitor(client: ControlClient): Promise<never> {
  let before: Map<string, number> | null = null;
  for (let row = 0; ; row++) {
    const data = (await client.request(['show', 'stats'])) as { stats: StatLine[] };
    const now = sumByKey(data.stats);
    if (row % 25 === 0) process.stdout.write(MONITOR_HEADER);
    process.stdout.write(monitorRow(now, before));
    before = now;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

const PERSONALITIES: Record<string, string[]> = {
  mailq: ['show', 'queue'],
  'tsmtpd-mailq': ['show', 'queue'],
  newaliases: ['update', 'table', 'aliases'],
  'tsmtpd-newaliases': ['update', 'table', 'aliases'],
};

/** `spf walk`: needs no daemon; DNS from /etc/resolv.conf or `--resolver ADDR:PORT`. */
async function spf(server: string | undefined): Promise<void> {
  const m = server ? /^\[?([^\]]+?)\]?:(\d+)$/.exec(server) : null;
  if (server && !m) die(2, `invalid --resolver: ${server} (ADDR:PORT)`);
  const resolver = createResolver({ resolvers: m ? [{ address: m[1]!, port: Number(m[2]) }] : [] });
  try {
    for (const domain of (await readStdin()).split(/\s+/).filter(Boolean)) {
      for (const net of await spfWalk(resolver, domain)) process.stdout.write(`${net}\n`);
    }
  } finally {
    resolver.close();
  }
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: process.argv.slice(2),
      allowPositionals: true,
      options: { spool: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, resolver: { type: 'string' } },
    });
  } catch (err) {
    die(2, `${(err as Error).message}\n${USAGE}`);
  }
  // smtpctl's personalities: invoked as mailq or newaliases it is that command
  const personality = PERSONALITIES[basename(process.argv[1] ?? '')];
  const words = personality ? [...personality, ...parsed.positionals] : parsed.positionals;
  if (parsed.values.help) return void process.stdout.write(HELP);
  if (words.length === 0) die(2, `${USAGE}\n"tsmtpctl help" lists the commands`);
  if (words[0] === 'help' && words.length === 1) return help();
  if ('encrypt'.startsWith(words[0]!) && words[0]!.length >= 2) return encrypt(words.slice(1));
  if (words[0] === 'spf' && words[1] !== undefined && 'walk'.startsWith(words[1])) return spf(parsed.values.resolver);

  const spool = parsed.values.spool ?? clientSpool();
  let client: ControlClient;
  try {
    client = await ControlClient.open(join(spool, CONTROL_SOCKET));
  } catch (err) {
    if (!(err instanceof ControlPermissionError)) die(1, (err as Error).message);
    // not root nor the daemon's user: the mailq socket answers `show queue`, and says
    // "need root privileges" to the rest, as smtpctl does
    client = await ControlClient.open(join(spool, QUERY_SOCKET)).catch(() => die(1, (err as Error).message));
  }
  try {
    if (!parsed.values.json && 'monitor'.startsWith(words[0]!) && words[0]!.length >= 2) await monitor(client);
    const json = parsed.values.json ?? false;
    const stream = new StreamedListing(json);
    const data = await client.request(words, (part) => stream.part(part as { text: string }));
    if (stream.started) stream.end();
    else print(words, data, json);
  } catch (err) {
    if (err instanceof DaemonNotRunningError) die(1, err.message);
    die(1, (err as Error).message);
  } finally {
    client.close();
  }
}

void main();
