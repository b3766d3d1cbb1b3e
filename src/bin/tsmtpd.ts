#!/usr/bin/env node
/**
 * tsmtpd, the daemon: `-n` checks the config, `-d` runs in the foreground logging to stderr,
 * otherwise it detaches and logs to syslog's mail facility (as OpenSMTPD's log_init does without
 * -d) or, with `--log FILE`, to a file. Exit codes: see EXIT in daemon/cli.ts.
 */
import { spawn } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { openSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { configureLog, log } from '../log.js';
import { EXIT, HELP, parseCli, USAGE, UsageError, type CliOptions } from '../daemon/cli.js';
import { preflight } from '../daemon/preflight.js';
import { obtainQueueKey } from '../daemon/queue-key.js';
import { findServerName } from '../daemon/server-name.js';
import { defaultSpool, lockSpool, prepareSpool } from '../daemon/spool.js';
import { Supervisor, V8_FLAGS } from '../daemon/supervisor.js';

/** A stop that takes longer than this is cut short: the queue is consistent at every instant. */
const STOP_DEADLINE_MS = 1500;
const CHILD_MARK = 'TSMTPD_DETACHED_CHILD';

function fail(code: number, message: string): never {
  process.stderr.write(`tsmtpd: ${message}\n`);
  process.exit(code);
}

function parseOrExit(): CliOptions {
  try {
    return parseCli(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) fail(EXIT.USAGE, `${err.message}\n${USAGE}`);
    throw err;
  }
}

/**
 * Re-run ourselves detached with `-d`; exit once the child says it is ready, or with its code.
 * To syslog, every process's lines go through one pipe to logger(1), tagged `smtpd` as
 * OpenSMTPD's are, so the filters and reports written for its lines find them; each line
 * carries its own priority (src/log.ts). A queue key read at start goes to the child on its
 * standard input, never on its command line.
 */
function detach(spool: string, where: string, queueKey: string | undefined): void {
  const target = logTarget(where);
  const out = target.kind === 'file' ? openSync(target.path, 'a', 0o640) : 'pipe';
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...process.argv.slice(2), '-d'], {
    detached: true,
    stdio: [queueKey === undefined ? 'ignore' : 'pipe', target.kind === 'file' ? out : 'ignore', out, 'ipc'],
    env: { ...process.env, [CHILD_MARK]: target.kind === 'file' ? '1' : 'syslog' },
  });
  if (queueKey !== undefined) child.stdin!.end(`${queueKey}\n`);
  if (target.kind === 'syslog') {
    const socket = target.socket ? ['--socket', target.socket] : [];
    const logger = spawn('logger', ['--tag', 'smtpd', `--id=${child.pid}`, '--prio-prefix', '--priority', 'mail.info', ...socket], {
      detached: true,
      stdio: [child.stderr!, 'ignore', 'ignore'],
    });
    logger.on('error', (err) => fail(EXIT.STARTUP, `cannot log to syslog with logger(1): ${err.message}`));
    logger.unref();
  }
  child.on('message', (m) => {
    if (m === 'ready') {
      process.stdout.write(`tsmtpd: started, pid ${child.pid}\n`);
      child.disconnect();
      child.unref();
      process.exit(EXIT.OK);
    }
  });
  child.on('exit', (code) => fail(code ?? EXIT.FATAL, `daemon exited during startup, see ${target.kind === 'file' ? target.path : 'the mail log'}`));
}

/** `--log`: syslog (the default), syslog:SOCKET, or a file. */
function logTarget(where: string): { kind: 'syslog'; socket?: string } | { kind: 'file'; path: string } {
  if (where === 'syslog') return { kind: 'syslog' };
  if (where.startsWith('syslog:')) return { kind: 'syslog', socket: where.slice('syslog:'.length) };
  return { kind: 'file', path: where };
}

async function main(): Promise<void> {
  for (const flag of V8_FLAGS) setFlagsFromString(flag);
  const opts = parseOrExit();
  if (opts.help) {
    process.stdout.write(HELP);
    return;
  }
  let config;
  try {
    config = loadConfig(opts.configFile, { macros: opts.macros });
    // what start will open, bind and run, checked now: -n and start give the same verdict
    await preflight(config);
  } catch (err) {
    if (err instanceof ConfigError) fail(EXIT.CONFIG, err.message);
    fail(EXIT.CONFIG, `${opts.configFile}: ${(err as Error).message}`);
  }
  if (opts.checkOnly) {
    process.stderr.write('configuration OK\n');
    return;
  }
  const keyAtStart = config.queue.encryption?.from !== undefined && config.queue.encryption.from !== 'config';
  try {
    obtainQueueKey(config, keyAtStart && process.env[CHILD_MARK] !== undefined);
  } catch (err) {
    fail(EXIT.STARTUP, (err as Error).message);
  }
  let spool: string;
  try {
    spool = prepareSpool(opts.spool ?? defaultSpool());
  } catch (err) {
    fail(EXIT.STARTUP, `cannot prepare the spool: ${(err as Error).message}`);
  }
  if (!opts.foreground) return detach(spool, opts.logFile ?? 'syslog', keyAtStart ? config.queue.encryption!.key : undefined);

  const timestamps = process.env[CHILD_MARK] === '1';
  const syslog = process.env[CHILD_MARK] === 'syslog';
  configureLog({ level: opts.verbose > 0 ? 'debug' : 'info', timestamps, syslog });
  let release: () => void;
  try {
    release = lockSpool(spool);
  } catch (err) {
    fail(EXIT.STARTUP, (err as Error).message);
  }
  const daemon = new Supervisor({
    config, spool, backends: opts.backends, verbose: opts.verbose > 0, serverName: findServerName(), users: opts.users,
    // the tests ask for the copy check on the parent's own bus too (between the parent's roles)
    checkBus: process.env['TSMTPD_CHECK_BUS'] === '1', timestamps, syslog,
  });
  const shutdown = (signal: string) => {
    log('info', null, 'daemon', 'shutdown', { signal });
    const deadline = setTimeout(() => {
      log('warn', null, 'daemon', 'shutdown', { result: 'deadline' });
      release();
      process.exit(EXIT.OK);
    }, STOP_DEADLINE_MS);
    void daemon.stop(STOP_DEADLINE_MS - 300).then(() => {
      clearTimeout(deadline);
      release();
      process.exit(EXIT.OK);
    });
  };
  process.once('SIGTERM', () => shutdown('TERM'));
  process.once('SIGINT', () => shutdown('INT'));
  process.on('uncaughtException', (err) => {
    // a bug in the parent: log it and stop (the children follow it out); every acknowledged
    // message is on disk, so a restart loses nothing
    log('error', null, 'daemon', 'fatal', { error: err.stack ?? String(err) });
    release();
    process.exit(EXIT.FATAL);
  });
  log('info', null, 'daemon', 'startup', { config: opts.configFile, spool, queue: opts.backends.queue });
  try {
    await daemon.start();
  } catch (err) {
    release();
    fail(EXIT.STARTUP, (err as Error).message);
  }
  process.send?.('ready');
}

void main();
