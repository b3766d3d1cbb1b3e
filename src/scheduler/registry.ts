/** Scheduler backends by their `-B scheduler=NAME` name; an unknown name is an error. */
import type { SchedulerBackend } from './backend.js';
import { RamQueue } from './ramqueue.js';

const FACTORIES: Record<string, () => SchedulerBackend> = {
  ramqueue: () => new RamQueue(),
};

export function createSchedulerBackend(name: string): SchedulerBackend {
  const factory = Object.hasOwn(FACTORIES, name) ? FACTORIES[name] : undefined;
  if (!factory) throw new Error(`unknown scheduler backend: ${name}`);
  return factory();
}
