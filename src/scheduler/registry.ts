/** Scheduler backends by their `-B scheduler=NAME` name; an unknown name is an error. */
import type { SchedulerBackend, SharedSchedulerBackend } from './backend.js';
import { join } from 'node:path';
import { RamQueue } from './ramqueue.js';
import { SCHEDULER_FILE, SqliteScheduler } from './sqlite.js';
import { PostgresScheduler } from './postgres.js';
import type { SharedQueueSettings } from '../queue/pg-pool.js';

const FACTORIES: Record<string, (spool: string) => SchedulerBackend> = {
  ramqueue: () => new RamQueue(),
  sqlite: (spool) => new SqliteScheduler(join(spool, SCHEDULER_FILE)),
};

export function createSchedulerBackend(name: string, spool: string): SchedulerBackend {
  const factory = Object.hasOwn(FACTORIES, name) ? FACTORIES[name] : undefined;
  if (!factory) throw new Error(`unknown scheduler backend: ${name}`);
  return factory(spool);
}

/** Schedulers whose store several nodes share; the daemon runs the shared scheduler role over them. */
const SHARED: Record<string, (s: SharedQueueSettings) => SharedSchedulerBackend> = {
  postgres: (s) => new PostgresScheduler(s),
};

export function isSharedScheduler(name: string): boolean {
  return Object.hasOwn(SHARED, name);
}

export function createSharedSchedulerBackend(name: string, settings: SharedQueueSettings): SharedSchedulerBackend {
  const factory = Object.hasOwn(SHARED, name) ? SHARED[name] : undefined;
  if (!factory) throw new Error(`unknown shared scheduler backend: ${name}`);
  return factory(settings);
}
