/**
 * Mailbox locks that other mail programs honour: the `NAME.lock` dotlock of mail.local and
 * lockspool (O_EXCL create, waited for, removed when stale), and a kernel flock(2) held by a
 * `flock(1)` child, because Node has no flock/fcntl of its own and the native addons that had
 * one are unmaintained. fcntl(2) record locks are not taken: see src/mda/README.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { open, stat, unlink } from 'node:fs/promises';
import type { Clock } from '../clock.js';

export interface DotlockOptions {
  /** How long to wait for a lock someone else holds before giving up (a tempfail). */
  waitMs: number;
  /** A lock file older than this is left over from a crash and is removed. */
  staleMs: number;
  clock: Clock;
}

export type Release = () => Promise<void>;

/** Take `lockPath` with O_EXCL; null when it stayed held for `waitMs`. */
export async function acquireDotlock(lockPath: string, opts: DotlockOptions): Promise<Release | null> {
  const deadline = opts.clock.now() + opts.waitMs;
  let delay = 50;
  for (;;) {
    if (await tryCreate(lockPath)) return () => unlink(lockPath).catch(() => undefined);
    if (await removeIfStale(lockPath, opts)) continue;
    const left = deadline - opts.clock.now();
    if (left <= 0) return null;
    await sleep(opts.clock, Math.min(delay, left));
    delay = Math.min(delay * 2, 1000);
  }
}

async function tryCreate(lockPath: string): Promise<boolean> {
  try {
    const fh = await open(lockPath, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW, 0o600);
    await fh.writeFile(`${process.pid}\n`).finally(() => fh.close());
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

async function removeIfStale(lockPath: string, opts: DotlockOptions): Promise<boolean> {
  const st = await stat(lockPath).catch(() => null);
  // gone in between: just try again
  if (!st) return true;
  if (opts.clock.now() - st.mtimeMs <= opts.staleMs) return false;
  // only remove the lock we judged stale, not a fresh one made since by another deliverer
  const again = await stat(lockPath).catch(() => null);
  if (!again || again.ino !== st.ino || again.mtimeMs !== st.mtimeMs) return true;
  await unlink(lockPath).catch(() => undefined);
  return true;
}

function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(ms, resolve));
}

export type FlockResult = { held: true; release: Release } | { held: false; reason: 'timeout' | 'unavailable' };

/**
 * Hold flock(2) on `path` through `flock -x -w SECS path sh -c '...'`: the child says `locked`
 * once it has the lock and keeps it until its stdin closes, so a crash of ours frees it too.
 */
export function holdFlock(path: string, waitMs: number): Promise<FlockResult> {
  const secs = Math.max(1, Math.ceil(waitMs / 1000));
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn('flock', ['-x', '-w', String(secs), path, '/bin/sh', '-c', 'echo locked; exec cat >/dev/null'], {
        stdio: ['pipe', 'pipe', 'ignore'],
        env: { PATH: '/usr/bin:/bin' },
      });
    } catch {
      resolve({ held: false, reason: 'unavailable' });
      return;
    }
    let settled = false;
    const settle = (r: FlockResult): void => {
      if (!settled) {
        settled = true;
        resolve(r);
      }
    };
    child.on('error', () => settle({ held: false, reason: 'unavailable' }));
    child.stdin!.on('error', () => undefined);
    child.stdout!.once('data', () => settle({ held: true, release: () => releaseHolder(child) }));
    child.on('exit', (code) => settle({ held: false, reason: code === 1 ? 'timeout' : 'unavailable' }));
  });
}

function releaseHolder(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.stdin!.end();
  });
}
