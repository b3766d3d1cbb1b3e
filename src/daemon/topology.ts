/**
 * Which roles live in which process, and which processes need a link between them. The parent
 * is privileged and small; every other process runs as an unprivileged user. Roles are grouped
 * where they share their data: the scheduler lives with the queue (it schedules what the queue
 * holds, and nothing else may touch the spool), stat with control (counters are read there).
 */
import { PEERS, type RoleName } from '../bus/messages.js';

export type ProcessKind = 'parent' | 'control' | 'lka' | 'mta' | 'queue' | 'smtp';

export const PROCESS_ROLES: Record<ProcessKind, readonly RoleName[]> = {
  parent: ['parent', 'mda'],
  control: ['stat', 'control'],
  lka: ['lka'],
  mta: ['mta'],
  queue: ['scheduler', 'queue'],
  smtp: ['smtp'],
};

/** The children in start order: counters first, then what sessions and deliveries need, listeners last. */
export const CHILD_KINDS: readonly ProcessKind[] = ['control', 'lka', 'mta', 'queue', 'smtp'];

/** Who each process runs as when the daemon is root: `queue` owns the spool, the rest share one user. */
export function processUser(kind: ProcessKind): 'root' | 'queue' | 'unprivileged' {
  return kind === 'parent' ? 'root' : kind === 'queue' ? 'queue' : 'unprivileged';
}

export function kindOf(processName: string): ProcessKind {
  return processName.replace(/\.\d+$/, '') as ProcessKind;
}

/** Two processes are linked when a role of one may message a role of the other. */
export function needsLink(a: ProcessKind, b: ProcessKind): boolean {
  if (a === b) return false;
  const talks = (x: ProcessKind, y: ProcessKind) =>
    PROCESS_ROLES[x].some((r) => PEERS[r].some((peer) => PROCESS_ROLES[y].includes(peer)));
  return talks(a, b) || talks(b, a);
}
