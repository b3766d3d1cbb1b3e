/** Maps the backend names `-B queue=NAME` accepts to their factories; an unknown name throws. */
import type { QueueBackend } from './backend.js';
import { FsQueueBackend } from './fs.js';
import { RamQueueBackend } from './ram.js';
import { SqliteQueueBackend } from './sqlite.js';

type Factory = (spool: string) => QueueBackend;

const FACTORIES: Record<string, Factory> = {
  fs: (spool) => new FsQueueBackend(spool),
  sqlite: (spool) => new SqliteQueueBackend(spool),
  ram: (spool) => new RamQueueBackend(spool),
};

export function queueBackendNames(): string[] {
  return Object.keys(FACTORIES).sort();
}

export function createQueueBackend(name: string, spool: string): QueueBackend {
  const make = Object.hasOwn(FACTORIES, name) ? FACTORIES[name] : undefined;
  if (!make) throw new Error(`unknown queue backend "${name}" (known: ${queueBackendNames().join(', ')})`);
  return make(spool);
}
