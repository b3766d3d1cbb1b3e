/**
 * Accept-side benchmark (issue 3): Postfix's smtp-source drives 20 concurrent sessions sending
 * 5000 messages of 4 KiB into a fresh tsmtpd that relays to Postfix's smtp-sink; prints accepted
 * messages/s, the daemon's peak RSS, and its RSS with 1000 idle connections open. Loopback only,
 * bounded in count and time.
 *
 *   npm run build && node dist/bench/smtp-accept.js [--messages 5000] [--sessions 20] [--queue fs|sqlite]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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
  },
});

function tool(name: string): string {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/sbin']) {
    if (spawnSync('test', ['-x', join(dir, name)]).status === 0) return join(dir, name);
  }
  throw new Error(`${name} not found: install Debian's postfix package (bash .ci/run does)`);
}

async function vm(pid: number, key: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
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

async function main(): Promise<void> {
  const messages = Number(values.messages);
  const sessions = Number(values.sessions);
  const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-bench-'));
  const [port, sinkPort] = [await freePort(), await freePort()];
  let daemon: ChildProcess | null = null;
  let sink: ChildProcess | null = null;
  try {
    sink = spawn(tool('smtp-sink'), ['-c', `127.0.0.1:${sinkPort}`, '1000'], { stdio: 'ignore' });
    await writeFile(join(dir, 'smtpd.conf'), [
      `listen on 127.0.0.1 port ${port} hostname bench.test`,
      'table relaynets { 127.0.0.0/8 }',
      `action "relay" relay host smtp://127.0.0.1:${sinkPort}`,
      'match from src <relaynets> for any action "relay"',
    ].join('\n') + '\n');
    daemon = spawn(process.execPath, [TSMTPD, '-d', '-f', join(dir, 'smtpd.conf'), '--spool', join(dir, 'spool'), '-B', `queue=${values.queue}`], { stdio: ['ignore', 'ignore', 'ignore'] });
    await waitForBanner(port, Date.now() + 30_000);
    // idle cost on a fresh daemon, as ../shared/bench measures it: before any load has grown the heap
    const before = await vm(daemon.pid!, 'VmRSS');
    const idle = await idleSessions(port, IDLE);
    await new Promise((r) => setTimeout(r, 1000));
    const withIdle = await vm(daemon.pid!, 'VmRSS');
    for (const s of idle) s.destroy();
    const source = tool('smtp-source');
    await run(source, ['-s', String(sessions), '-m', '500', '-l', values.size!, '-f', 'sender@bench.test', '-t', 'rcpt@relay.test', `127.0.0.1:${port}`], 120_000);
    const started = process.hrtime.bigint();
    await run(source, ['-s', String(sessions), '-m', String(messages), '-l', values.size!, '-f', 'sender@bench.test', '-t', 'rcpt@relay.test', `127.0.0.1:${port}`], 600_000);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const peak = await vm(daemon.pid!, 'VmHWM');
    console.log(`tsmtpd accept (queue=${values.queue}): ${sessions} sessions x ${messages} messages x ${values.size} B`);
    console.log(`  accepted        ${(messages / seconds).toFixed(0)} msg/s (${seconds.toFixed(2)} s)`);
    console.log(`  peak RSS        ${peak.toFixed(1)} MiB`);
    console.log(`  RSS idle        ${before.toFixed(1)} MiB -> ${withIdle.toFixed(1)} MiB with ${IDLE} idle connections (+${((withIdle - before) * 1024 / IDLE).toFixed(1)} KiB each)`);
  } finally {
    daemon?.kill('SIGTERM');
    sink?.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    daemon?.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
