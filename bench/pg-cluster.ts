/**
 * The shared queue's accept throughput: Postfix's smtp-source sends through one node, then through
 * two nodes sharing one PostgreSQL database (the load split between them), each node relaying to
 * Postfix's smtp-sink; the fs queue on one node for comparison. Prints accepted msg/s and the time
 * until the queue was empty again (every message delivered by one node or the other).
 *
 *   npm run build && node dist/bench/pg-cluster.js [--messages 2000] [--sessions 20] [--admin postgresql://postgres@127.0.0.1:5432/test]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { freePort } from '../test/harness/net.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const TSMTPD = resolve(HERE, '../src/bin/tsmtpd.js');

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    sessions: { type: 'string', default: '20' },
    admin: { type: 'string', default: 'postgresql://postgres@127.0.0.1:5432/test' },
  },
});

function tool(name: string): string {
  for (const dir of ['/usr/sbin', '/usr/bin']) if (spawnSync('test', ['-x', join(dir, name)]).status === 0) return join(dir, name);
  throw new Error(`${name} not found: install Debian's postfix package (bash .ci/run does)`);
}

async function waitForBanner(port: number): Promise<void> {
  for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect(port, '127.0.0.1');
      s.once('data', (d) => { s.destroy(); res(d.toString().startsWith('220')); });
      s.once('error', () => res(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('tsmtpd did not answer 220 in time');
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.once('exit', (code) => { clearTimeout(timer); code === 0 ? res() : rej(new Error(`${cmd} exited ${code}`)); });
  });
}

/** Until `empty` holds, polling; seconds waited. */
async function drained(empty: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  while (!(await empty())) {
    if (Date.now() - t0 > 600_000) throw new Error('the queue did not drain');
    await new Promise((r) => setTimeout(r, 200));
  }
  return (Date.now() - t0) / 1000;
}

async function runOne(queue: 'fs' | 'postgres', nodes: number): Promise<string> {
  const messages = Number(values.messages);
  const sessions = Number(values.sessions);
  const dbName = `tsmtpd_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: values.admin });
  await admin.connect();
  const url = new URL(values.admin!);
  url.pathname = `/${dbName}`;
  if (queue === 'postgres') await admin.query(`CREATE DATABASE ${dbName}`);
  const sinkPort = await freePort();
  // smtp-sink refuses to run as root without a user to become
  const asUser = process.getuid?.() === 0 ? ['-u', 'nobody'] : [];
  const sink = spawn(tool('smtp-sink'), [...asUser, '-c', `127.0.0.1:${sinkPort}`, '1000'], { stdio: 'ignore' });
  const daemons: ChildProcess[] = [];
  const dirs: string[] = [];
  try {
    const ports: number[] = [];
    for (let n = 0; n < nodes; n++) {
      const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-bench-'));
      await chmod(dir, 0o755);
      dirs.push(dir);
      const port = await freePort();
      ports.push(port);
      await writeFile(join(dir, 'smtpd.conf'), [
        `listen on 127.0.0.1 port ${port} hostname node${n}.bench.test`,
        ...(queue === 'postgres' ? [`queue url "${url}"`, `queue node "node${n}"`] : []),
        'table relaynets { 127.0.0.0/8 }',
        `action "relay" relay host smtp://127.0.0.1:${sinkPort}`,
        'match from src <relaynets> for any action "relay"',
      ].join('\n') + '\n');
      daemons.push(spawn(process.execPath, [TSMTPD, '-d', '-f', join(dir, 'smtpd.conf'), '--spool', join(dir, 'spool'), '-B', `queue=${queue}`], { stdio: 'ignore' }));
      await waitForBanner(port);
    }
    const source = tool('smtp-source');
    const send = (port: number, count: number, s: number) =>
      run(source, ['-s', String(s), '-m', String(count), '-l', '4096', '-f', 'sender@bench.test', '-t', 'rcpt@relay.test', `127.0.0.1:${port}`]);
    const started = process.hrtime.bigint();
    await Promise.all(ports.map((p) => send(p, Math.ceil(messages / nodes), Math.ceil(sessions / nodes))));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const empty = queue === 'postgres'
      ? async () => {
        const c = new pg.Client({ connectionString: url.toString() });
        await c.connect();
        const n = Number((await c.query('SELECT count(*) AS n FROM tsmtpd_envelopes')).rows[0].n);
        await c.end();
        return n === 0;
      }
      // the fs queue keeps its bucket directories: empty means no file left below queue/
      : async () => (await readdir(join(dirs[0]!, 'spool', 'queue'), { recursive: true, withFileTypes: true }).catch(() => [])).every((e) => !e.isFile());
    const drain = await drained(empty);
    return `| ${queue} | ${nodes} | ${(Math.ceil(messages / nodes) * nodes / seconds).toFixed(0)} | ${drain.toFixed(1)} |`;
  } finally {
    for (const d of daemons) d.kill('SIGTERM');
    sink.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 1500));
    for (const d of daemons) d.kill('SIGKILL');
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    if (queue === 'postgres') await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
}

console.log(`${values.sessions} sessions x ${values.messages} messages x 4 KiB, split between the nodes, relayed to smtp-sink`);
console.log('| queue | nodes | accepted msg/s | then drained in s |\n|---|---|---|---|');
for (const [queue, nodes] of [['fs', 1], ['postgres', 1], ['postgres', 2]] as const) console.log(await runOne(queue, nodes));
