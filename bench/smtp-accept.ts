/**
 * Accept-side benchmark: Postfix's smtp-source drives 20 concurrent sessions sending 5000
 * messages of 4 KiB into a fresh tsmtpd that relays to Postfix's smtp-sink; prints accepted
 * messages/s, the peak RSS of the daemon's processes, and their RSS with 1000 idle connections
 * open. Several queues and smtp worker counts run in one invocation, interleaved, so their
 * figures compare. Loopback only, bounded in count and time.
 *
 *   npm run build && node dist/bench/smtp-accept.js [--messages 5000] [--sessions 20] [--queue fs,ram] [--workers 1,2] [--rounds 1]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../test/harness/net.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const TSMTPD = resolve(HERE, '../src/bin/tsmtpd.js');
const IDLE = 1000;

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '5000' },
    sessions: { type: 'string', default: '20' },
    size: { type: 'string', default: '4096' },
    queue: { type: 'string', default: 'fs' },
    workers: { type: 'string', default: '1,2' },
    rounds: { type: 'string', default: '1' },
  },
});

function tool(name: string): string {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/sbin']) {
    if (spawnSync('test', ['-x', join(dir, name)]).status === 0) return join(dir, name);
  }
  throw new Error(`${name} not found: install Debian's postfix package (bash .ci/run does)`);
}

/** The daemon and every process below it (the role processes, the mda's children). */
async function tree(pid: number): Promise<number[]> {
  const parents = new Map<number, number>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid) parents.set(Number(name), ppid);
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const [child, parent] of parents) if (parent === out[i]) out.push(child);
  return out;
}

/** RSS (or peak RSS) summed over the daemon's processes, in MiB. */
async function vm(pid: number, key: 'VmRSS' | 'VmHWM'): Promise<number> {
  let kb = 0;
  for (const p of await tree(pid)) {
    const status = await readFile(`/proc/${p}/status`, 'utf8').catch(() => '');
    kb += Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  }
  return kb / 1024;
}

async function waitForBanner(port: number, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
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

function run(cmd: string, args: string[], timeoutMs: number): Promise<number> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => { clearTimeout(timer); code === 0 ? res(0) : rej(new Error(`${cmd} exited ${code}`)); });
  });
}

/** Open `count` sessions that read the banner and then sit idle; resolves once all are open. */
async function idleSessions(port: number, count: number): Promise<Socket[]> {
  const sockets: Socket[] = [];
  for (let i = 0; i < count; i++) {
    sockets.push(await new Promise<Socket>((res, rej) => {
      const s = connect(port, '127.0.0.1');
      s.once('data', () => res(s));
      s.once('error', rej);
    }));
  }
  return sockets;
}

interface Figures {
  queue: string;
  workers: number;
  msgPerSec: number;
  peakMiB: number;
  idleMiB: number;
  withIdleMiB: number;
}

async function runOne(queue: string, workers: number): Promise<Figures> {
  const messages = Number(values.messages);
  const sessions = Number(values.sessions);
  const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-bench-'));
  // run as root, the daemon's unprivileged processes must reach the spool below it
  await chmod(dir, 0o755);
  const [port, sinkPort] = [await freePort(), await freePort()];
  let daemon: ChildProcess | null = null;
  let sink: ChildProcess | null = null;
  try {
    // smtp-sink refuses to run as root without a user to become
    const asUser = process.getuid?.() === 0 ? ['-u', 'nobody'] : [];
    sink = spawn(tool('smtp-sink'), [...asUser, '-c', `127.0.0.1:${sinkPort}`, '1000'], { stdio: 'ignore' });
    await writeFile(join(dir, 'smtpd.conf'), [
      `listen on 127.0.0.1 port ${port} hostname bench.test`,
      `smtp workers ${workers}`,
      'table relaynets { 127.0.0.0/8 }',
      `action "relay" relay host smtp://127.0.0.1:${sinkPort}`,
      'match from src <relaynets> for any action "relay"',
    ].join('\n') + '\n');
    daemon = spawn(process.execPath, [TSMTPD, '-d', '-f', join(dir, 'smtpd.conf'), '--spool', join(dir, 'spool'), '-B', `queue=${queue}`], { stdio: ['ignore', 'ignore', 'ignore'] });
    await waitForBanner(port, Date.now() + 30_000);
    // idle cost on a fresh daemon, as ../shared/bench measures it: before any load has grown the heap
    const idleMiB = await vm(daemon.pid!, 'VmRSS');
    const idle = await idleSessions(port, IDLE);
    await new Promise((r) => setTimeout(r, 1000));
    const withIdleMiB = await vm(daemon.pid!, 'VmRSS');
    for (const s of idle) s.destroy();
    const source = tool('smtp-source');
    await run(source, ['-s', String(sessions), '-m', '500', '-l', values.size!, '-f', 'sender@bench.test', '-t', 'rcpt@relay.test', `127.0.0.1:${port}`], 120_000);
    const started = process.hrtime.bigint();
    await run(source, ['-s', String(sessions), '-m', String(messages), '-l', values.size!, '-f', 'sender@bench.test', '-t', 'rcpt@relay.test', `127.0.0.1:${port}`], 600_000);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return { queue, workers, msgPerSec: messages / seconds, peakMiB: await vm(daemon.pid!, 'VmHWM'), idleMiB, withIdleMiB };
  } finally {
    daemon?.kill('SIGTERM');
    sink?.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 1000));
    daemon?.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const queues = values.queue!.split(',');
  const workerCounts = values.workers!.split(',').map(Number);
  const results: Figures[] = [];
  // interleaved rounds: a slow spell of the machine then weighs on every configuration alike
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const queue of queues) for (const workers of workerCounts) results.push(await runOne(queue, workers));
  }
  console.log(`tsmtpd accept: ${values.sessions} sessions x ${values.messages} messages x ${values.size} B, relayed to smtp-sink; ${IDLE} idle connections`);
  console.log('| queue | smtp workers | accepted msg/s | peak RSS MiB (all processes) | RSS idle MiB | per idle connection KiB |');
  console.log('|---|---|---|---|---|---|');
  for (const r of results) {
    console.log(`| ${r.queue} | ${r.workers} | ${r.msgPerSec.toFixed(0)} | ${r.peakMiB.toFixed(0)} | ${r.idleMiB.toFixed(0)} | ${((r.withIdleMiB - r.idleMiB) * 1024 / IDLE).toFixed(1)} |`);
  }
}

await main();
