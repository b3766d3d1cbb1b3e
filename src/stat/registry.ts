/** Stat backends by the name `-B stat=NAME` gives. */
import type { StatBackend } from './backend.js';
import { RamStat } from './ram.js';

const FACTORIES: Record<string, () => StatBackend> = {
  ram: () => new RamStat(),
};

export function statBackendNames(): string[] {
  return Object.keys(FACTORIES);
}

export function createStatBackend(name: string): StatBackend {
  const make = FACTORIES[name];
  if (!make) throw new Error(`unknown stat backend: ${name} (known: ${statBackendNames().join(', ')})`);
  return make();
}
