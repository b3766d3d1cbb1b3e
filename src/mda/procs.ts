/**
 * The delivery processes under way (mda commands and delivery children, each the leader of its
 * own process group), so a timeout or the daemon's shutdown can end them and all they started.
 */
import type { ChildProcess } from 'node:child_process';

const running = new Set<number>();

/** Remember a child until it exits. */
export function track(child: ChildProcess): void {
  const pid = child.pid;
  if (!pid) return;
  running.add(pid);
  child.once('exit', () => running.delete(pid));
}

/** SIGKILL a child's whole process group: a shell's own children must not outlive it. */
export function killGroup(pid: number | undefined): void {
  if (!pid) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // the group is gone already
  }
}

/** On shutdown: what has not finished is retried later, and must not linger as an orphan. */
export function killAll(): number {
  const n = running.size;
  for (const pid of running) killGroup(pid);
  running.clear();
  return n;
}
