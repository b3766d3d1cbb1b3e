/**
 * The spool directory holds all of the daemon's state. A pid file in it, taken with O_EXCL,
 * keeps a second daemon off the same spool; a stale one (its process gone) is taken over.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const SYSTEM_SPOOL = '/var/spool/tsmtpd';

export function defaultSpool(): string {
  return process.getuid?.() === 0 ? SYSTEM_SPOOL : resolve('spool');
}

/**
 * The spool sendmail, mailq and tsmtpctl talk to: TSMTPD_SPOOL, else the system's spool when
 * there is one (a user's cron job or mail(1) reaches the daemon root started), else ./spool.
 */
export function clientSpool(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TSMTPD_SPOOL) return resolve(env.TSMTPD_SPOOL);
  return process.getuid?.() === 0 || existsSync(SYSTEM_SPOOL) ? SYSTEM_SPOOL : resolve('spool');
}

export function prepareSpool(dir: string): string {
  const abs = resolve(dir);
  // 0711 as smtpd's spool: others may traverse to the socket but not list the queue
  mkdirSync(abs, { recursive: true, mode: 0o711 });
  return abs;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Take the spool's pid file; returns a release function, or throws naming the running daemon. */
export function lockSpool(spool: string): () => void {
  const file = join(spool, 'tsmtpd.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        try {
          unlinkSync(file);
        } catch {
          // already gone: nothing to release
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number.parseInt(readFileSync(file, 'utf8'), 10);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new Error(`another tsmtpd (pid ${pid}) is running on spool ${spool}`);
      }
      unlinkSync(file);
    }
  }
  throw new Error(`cannot lock spool ${spool}`);
}
