/** Maps the backend names `-B queue=NAME` accepts to their factories; an unknown name throws. */
import type { QueueBackend } from './backend.js';
import { FsQueueBackend } from './fs.js';

type Factory = (spool: string) => QueueBackend;

const FACTORIES: Record<string, Factory> = {
  fs: (spool) => new FsQueueBackend(spool),
};

export function queueBackendNames(): string[] {
  return Object.keys(FACTORIES).sort();
}

export function createQueueBackend(name: string, spool: string): QueueBackend {
  const make = Object.hasOwn(FACTORIES, name) ? FACTORIES[name] : undefined;
  if (!make) throw new Error(`unknown queue backend "${name}" (known: ${queueBackendNames().join(', ')})`);
  return make(spool);
}
