/** Maps the backend names `-B queue=NAME` accepts to their factories; an unknown name throws. */
import type { QueueBackend } from './backend.js';
import { FsQueueBackend } from './fs.js';
import { RamQueueBackend } from './ram.js';
import { SqliteQueueBackend } from './sqlite.js';
import { PostgresQueueBackend } from './postgres.js';
import { sharedQueueSettings } from './pg-pool.js';
import type { Config } from '../config/types.js';

type Factory = (spool: string, settings: Config['queue']) => QueueBackend;

const FACTORIES: Record<string, Factory> = {
  fs: (spool) => new FsQueueBackend(spool),
  sqlite: (spool) => new SqliteQueueBackend(spool),
  ram: (spool) => new RamQueueBackend(spool),
  postgres: (spool, settings) => new PostgresQueueBackend(spool, sharedQueueSettings(settings, spool)),
};

export function queueBackendNames(): string[] {
  return Object.keys(FACTORIES).sort();
}

/** `settings`: smtpd.conf's `queue` lines, which the postgres queue takes its database from. */
export function createQueueBackend(name: string, spool: string, settings: Config['queue'] = { compression: false, ttl: 0 }): QueueBackend {
  const make = Object.hasOwn(FACTORIES, name) ? FACTORIES[name] : undefined;
  if (!make) throw new Error(`unknown queue backend "${name}" (known: ${queueBackendNames().join(', ')})`);
  return make(spool, settings);
}
