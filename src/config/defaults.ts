/** An empty Config with OpenSMTPD's defaults (smtpd.conf(5), OPENSMTPD.md §2.5). */
import type { Config } from './types.js';

export function emptyConfig(file: string): Config {
  return {
    file,
    // no prototype: a macro named like an Object method must not find one
    macros: Object.create(null) as Record<string, string>,
    tables: new Map(),
    pkis: new Map(),
    cas: new Map(),
    listeners: [],
    actions: new Map(),
    rules: [],
    filters: new Map(),
    procs: new Map(),
    mdaWrappers: new Map(),
    mdaLimits: { 'max-session': 50, 'max-session-per-user': 7 },
    queue: { compression: false, ttl: 4 * 86400 },
    smtp: { ciphers: 'HIGH:!aNULL:!MD5', maxMails: 100, maxRcpt: 1000, maxMessageSize: 35 * 1024 * 1024, subAddrDelim: '+',
      timeout: 300, workers: 0, maxSessions: 10_000, maxSessionsPerAddress: 100, maxCommandTime: 300, minDataRate: 500 },
    mta: { port: 25, limits: [] },
    schedulerLimits: { 'max-inflight': 5000, 'max-evp-batch-size': 256, 'max-schedule': 10 },
    bounce: { warnIntervals: [4 * 3600] },
    resolvers: [],
  };
}

/** What smtpd adds once the file is read: the socket listener for local submission. */
export function defaultsAfterParse(config: Config): void {
  if (!config.listeners.some((l) => l.kind === 'socket')) {
    config.listeners.push({
      kind: 'socket', interface: 'socket', family: 'any', port: 0, tls: 'none', tlsVerify: false, pki: [],
      auth: 'none', maskSrc: false, noDsn: false, proxyV2: false, receivedAuth: false,
      where: { file: config.file, line: 0 },
    });
  }
}
