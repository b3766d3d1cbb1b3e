/**
 * Starts the real daemon binary for a test: a temp directory with the given smtpd.conf and a
 * spool, `tsmtpd -d`, and helpers to wait for log lines, stop it (SIGTERM) or kill it (SIGKILL).
 *
 *   const d = await startDaemon({ config: 'listen on 127.0.0.1 port 0 ...' });
 *   await d.waitForLog(/smtp listen/); ...; await d.stop();
 *
 * `%DIR%` in the config text is replaced by the test's temp directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
/** dist/test/harness → dist/src/bin/tsmtpd.js */
export const TSMTPD_BIN = resolve(HERE, '../../src/bin/tsmtpd.js');

export interface DaemonHandle {
  dir: string;
  spool: string;
  configPath: string;
  process: ChildProcess;
  /** Everything the daemon wrote to stderr so far. */
  logs(): string;
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM, then wait for exit; resolves with the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
  /** SIGKILL, then wait for exit. */
  kill(): Promise<void>;
  /** Start the daemon again on the same directory (after stop or kill). */
  restart(): Promise<DaemonHandle>;
  /** Remove the temp directory. */
  cleanup(): Promise<void>;
}

export interface DaemonOptions {
  config: string;
  args?: string[];
  env?: Record<string, string>;
  /** Regex that marks readiness in the log; default: the daemon's `ready` line. */
  readyPattern?: RegExp;
  dir?: string;
  readyTimeoutMs?: number;
  /** Written to the daemon's standard input, which is then closed (default: no input). */
  stdin?: string;
  /** Run the daemon as this user instead of the test's (root tests of the unprivileged mode). */
  uid?: number;
  gid?: number;
  /** Runs the daemon through another command, such as a private machine (harness/machine.ts). */
  wrap?: (argv: string[], dir: string) => Promise<{ file: string; args: string[] }>;
}

export async function startDaemon(options: DaemonOptions): Promise<DaemonHandle> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'tsmtpd-test-')));
  // the daemon's unprivileged processes (when the tests run as root) read tables and reach the
  // spool's queue directories through here
  await chmod(dir, (await stat(dir)).mode | 0o755);
  const spool = join(dir, 'spool');
  const configPath = join(dir, 'smtpd.conf');
  await writeFile(configPath, options.config.replaceAll('%DIR%', dir));
  const argv = [process.execPath, TSMTPD_BIN, '-d', '-f', configPath, '--spool', spool, ...(options.args ?? [])];
  const { file, args } = options.wrap ? await options.wrap(argv, dir) : { file: argv[0]!, args: argv.slice(1) };
  const child = spawn(file, args, {
    stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    ...(options.uid !== undefined ? { uid: options.uid, gid: options.gid ?? options.uid } : {}),
    // every payload between the parent's own roles is copied as across processes
    env: { ...process.env, TSMTPD_CHECK_BUS: '1', ...options.env },
  });
  if (options.stdin !== undefined) child.stdin!.end(options.stdin);
  let output = '';
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    for (const w of [...waiters]) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => { for (const w of [...waiters]) w(); res(code); }));
  let exitCode: number | null | undefined;
  void exited.then((c) => (exitCode = c));

  const waitForLog = (pattern: RegExp, timeoutMs = 10_000) =>
    new Promise<string>((res, rej) => {
      const check = () => {
        const m = output.match(pattern);
        if (m) return done(() => res(m[0]));
        if (exitCode !== undefined) return done(() => rej(new Error(`daemon exited (${exitCode}) before ${pattern}:\n${output}`)));
      };
      const timer = setTimeout(() => done(() => rej(new Error(`timeout waiting for ${pattern}:\n${output}`))), timeoutMs);
      const done = (f: () => void) => { clearTimeout(timer); waiters.delete(check); f(); };
      waiters.add(check);
      check();
    });

  const handle: DaemonHandle = {
    dir,
    spool,
    configPath,
    process: child,
    logs: () => output,
    waitForLog,
    async stop(timeoutMs = 5000) {
      if (exitCode !== undefined) return exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    async kill() {
      if (exitCode !== undefined) return;
      child.kill('SIGKILL');
      await exited;
    },
    restart: () => startDaemon({ ...options, dir }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
  await waitForLog(options.readyPattern ?? / daemon ready /, options.readyTimeoutMs ?? 60_000);
  return handle;
}
