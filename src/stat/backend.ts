/**
 * The stat backend interface: counters and gauges whose keys are created as the daemon runs,
 * each with optional labels (per domain, per listener, per action...).
 */

export interface StatValue {
  key: string;
  labels: Record<string, string>;
  value: number;
  kind: 'counter' | 'gauge';
}

export interface StatBackend {
  increment(key: string, labels: Record<string, string>, by: number): void;
  decrement(key: string, labels: Record<string, string>, by: number): void;
  set(key: string, labels: Record<string, string>, value: number): void;
  /** Every key with its labels and value, in a stable order. */
  iterate(): StatValue[];
  close(): void;
}

/** One stable text form for a key plus labels, used as a map key by backends. */
export function seriesId(key: string, labels: Record<string, string>): string {
  const names = Object.keys(labels).sort();
  if (names.length === 0) return key;
  return key + '{' + names.map((n) => `${n}=${JSON.stringify(labels[n])}`).join(',') + '}';
}
