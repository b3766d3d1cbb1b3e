/**
 * The smtp role alone, in the test's process, over real loopback sockets, with scripted lka and
 * queue peers on a real bus: answers may be made late (`delay`) or wrong (`lka` overrides), and
 * the queue keeps count of the messages it handed out, so a test can check that every one was
 * committed or rolled back. AUTH failures reach the real ban keeper (src/lka/auth-failures.ts)
 * and its bans the role's admission, as through the lka and the parent in the daemon. Log lines are kept for the test to read, and so is any error
 * that escaped to the process (which would have ended a daemon).
 *
 *   const r = await startSmtpRole({ listeners: [{}] });
 *   const c = await SmtpTestClient.connect(r.ports[0]!); ...; await r.stop();
 */
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bus, type Role } from '../../src/bus/bus.js';
import type { Handlers } from '../../src/bus/messages.js';
import { FakeClock, systemClock, type Clock } from '../../src/clock.js';
import type { Config, Listener } from '../../src/config/types.js';
import { emptyConfig } from '../../src/config/defaults.js';
import { configureLog } from '../../src/log.js';
import { AuthFailures } from '../../src/lka/auth-failures.js';
import { createSmtpRole, type SmtpRole as RoleUnderTest } from '../../src/smtp/role.js';
import { SESSION_LIMITS, type SessionLimits } from '../../src/smtp/limits.js';
import { createStatRole } from '../../src/stat/role.js';
import { freePort } from './net.js';

export interface SmtpRoleOptions {
  /** Listener fields over an inet listener on 127.0.0.1 (a `socket` kind listens in the spool). */
  listeners: Partial<Listener>[];
  limits?: Partial<SessionLimits>;
  /** The clock of the network timers (deadlines, AUTH pause, bans); real time by default. */
  timers?: Clock;
  smtp?: Partial<Config['smtp']>;
  /** Milliseconds before each lka or queue answer; called once per request. */
  delay?: () => number;
  /** Replaces or adds lka handlers (a handler that answers garbage, for instance). */
  lka?: Record<string, (req: never) => unknown>;
  /** Password the scripted lka accepts for any user. */
  password?: string;
  /** `pki` entries for TLS listeners. */
  pkis?: { name: string; cert: string; key: string }[];
}

export interface SmtpRole {
  ports: number[];
  /** The path of a `socket` listener, if one was asked for. */
  socketPath: string;
  bus: Bus;
  logs: string[];
  /** Uncaught exceptions and unhandled rejections while the role ran. */
  escaped: unknown[];
  /** Message files handed out and not yet committed or rolled back. */
  openMessages: Set<string>;
  committed: number;
  stat(key: string, labels?: Record<string, string>): Promise<number | undefined>;
  stop(): Promise<void>;
}

export async function startSmtpRole(o: SmtpRoleOptions): Promise<SmtpRole> {
  const spool = await mkdtemp(join(tmpdir(), 'tsmtpd-smtp-'));
  const logs: string[] = [];
  configureLog({ sink: { write: (line) => logs.push(line) } });
  const escaped: unknown[] = [];
  const record = (err: unknown) => escaped.push(err);
  process.on('uncaughtException', record);
  process.on('unhandledRejection', record);
  const config = emptyConfig('test.conf');
  Object.assign(config.smtp, o.smtp ?? {});
  for (const p of o.pkis ?? []) config.pkis.set(p.name, { ...p, dhe: 'none', where: { file: 'test.conf', line: 1 } });
  const ports: number[] = [];
  for (const l of o.listeners) {
    const port = l.kind === 'socket' ? 0 : await freePort();
    ports.push(port);
    config.listeners.push({
      kind: 'inet', interface: '127.0.0.1', family: 'any', port, tls: 'none', tlsVerify: false, pki: [],
      auth: 'none', maskSrc: false, noDsn: false, proxyV2: false, receivedAuth: false,
      hostname: 'mx.test.local', where: { file: 'test.conf', line: 1 }, ...l,
    });
  }
  const bus = new Bus({ checkSerializable: true });
  const delay = o.delay ?? (() => 0);
  const late = async <T>(answer: () => T | Promise<T>): Promise<T> => {
    const ms = delay();
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
    return answer();
  };
  const openMessages = new Set<string>();
  let seq = 0;
  const state = { committed: 0 };
  let smtp: RoleUnderTest | null = null;
  const ban = config.smtp.authBan;
  const failures = new AuthFailures(ban ? { failures: ban.failures, windowMs: ban.window * 1000, banMs: ban.duration * 1000 } : null, o.timers ?? systemClock);
  const lka = {
    'smtp.session.connect': () => late(() => ({ fcrdns: 'fail' as const })),
    'smtp.auth.failure': (req: { address: string }) => {
      const ms = failures.record(req.address);
      if (ms === null) return;
      logs.push(`- lka banned address=${req.address} reason=auth-failures`);
      smtp!.admission.ban(req.address, ms);
    },
    'smtp.tx.reset': () => undefined,
    'smtp.session.close': () => undefined,
    'smtp.auth.check': (req: { password: string }) => late(() => ({ result: req.password === (o.password ?? 'secret') ? 'pass' : 'fail' })),
    'smtp.mailfrom.check': () => late(() => ({ result: 'accept' })),
    'smtp.rcpt.resolve': (req: { rcpt: string }) => late(() => ({ result: 'accept', envelopes: [{ rcpt: req.rcpt }] })),
    'smtp.filter.phase': (req: { phase: string; param: string }) => late(() => ({ kind: 'proceed', junk: false, param: req.param, dataLine: req.phase === 'data' })),
    'smtp.filter.report': () => undefined,
    'smtp.filter.data': (req: { lines: string[] }) => late(() => ({ lines: req.lines })),
    ...o.lka,
  };
  const queue = {
    'smtp.message.create': () => late(async () => {
      const msgid = (++seq).toString(16).padStart(8, '0');
      await writeFile(join(spool, msgid), '');
      openMessages.add(msgid);
      return { msgid };
    }),
    'smtp.message.write': (req: { msgid: string; data: Buffer }) => late(() => appendFile(join(spool, req.msgid), req.data)),
    'smtp.message.commit': (req: { msgid: string }) => late(() => {
      openMessages.delete(req.msgid);
      state.committed++;
      return { result: 'ok', envelopes: [] };
    }),
    'smtp.message.rollback': (req: { msgid: string }) => late(() => void openMessages.delete(req.msgid)),
    'smtp.message.data': () => undefined,
  };
  const role = <R extends 'lka' | 'queue'>(name: R, handlers: object): Role<R> =>
    ({ name, peers: ['stat'], handlers: handlers as Handlers<R>, start: async () => {}, stop: async () => {} });
  const ctx = {
    config, clock: new FakeClock(), spool, serverName: 'mx.test.local',
    backends: { queue: 'ram', scheduler: 'ramqueue', stat: 'ram' }, verbose: false,
  };
  const stat = createStatRole({ ...ctx, bus: bus.endpoint('stat') });
  smtp = createSmtpRole({ ...ctx, bus: bus.endpoint('smtp') }, { ...SESSION_LIMITS, ...o.limits }, o.timers ?? systemClock);
  bus.register(stat);
  bus.register(role('lka', lka));
  bus.register(role('queue', queue));
  bus.register(smtp);
  bus.register({ name: 'control', peers: ['stat'], handlers: {} as never, start: async () => {}, stop: async () => {} });
  await smtp.start();
  return {
    ports,
    socketPath: join(spool, 'enqueue.sock'),
    bus,
    logs,
    escaped,
    openMessages,
    get committed() {
      return state.committed;
    },
    async stat(key, labels) {
      const { stats } = await bus.request('control', 'control.stat.list', {});
      return stats.find((s) => s.key === key && JSON.stringify(s.labels ?? {}) === JSON.stringify(labels ?? {}))?.value;
    },
    async stop() {
      await smtp.stop();
      await rm(spool, { recursive: true, force: true });
      process.off('uncaughtException', record);
      process.off('unhandledRejection', record);
    },
  };
}
