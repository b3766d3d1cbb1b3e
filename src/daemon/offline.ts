/**
 * OpenSMTPD's offline queue, the daemon's side (smtpd.c offline_scan, offline_enqueue): at start
 * the parent looks in `SPOOL/offline` for the messages sendmail kept while the daemon was down,
 * and submits each by running sendmail again, as the file's owner, with the arguments of its
 * first line and the rest of the file on its stdin. A file is removed once that sendmail exits
 * 0, and kept (with a warning) otherwise; an empty one is removed. At most OFFLINE_QUEUEMAX run
 * at once. The parent does it because only root can run a program as another user.
 */
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { log } from '../log.js';
import { getentPasswd } from '../mda/passwd.js';
import { decodeArgs, OFFLINE_DIR, OFFLINE_DIR_MODE } from '../sendmail/offline.js';
import { isRoot } from './privileges.js';

const SENDMAIL_SCRIPT = fileURLToPath(new URL('../bin/sendmail.js', import.meta.url));
/** smtpd.c: how many offline sendmails run at once. */
const OFFLINE_QUEUEMAX = 5;
/** The arguments line is short; a longer "first line" is not an offline file. */
const MAX_ARGS_LINE = 64 * 1024;
/** _PATH_DEFPATH, the only environment offline_enqueue gives its sendmail (with the spool here). */
const DEFAULT_PATH = '/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin';

/** `SPOOL/offline`, mode 01777, as sendmail needs it to be (a plain directory, never a link). */
export function prepareOfflineDir(spool: string): void {
  const dir = join(spool, OFFLINE_DIR);
  mkdirSync(dir, { recursive: true, mode: OFFLINE_DIR_MODE });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  if ((st.mode & 0o7777) !== OFFLINE_DIR_MODE) chmodSync(dir, OFFLINE_DIR_MODE);
}

function isDirectory(path: string): boolean {
  try {
    return path !== '' && statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The first line of an open file, leaving the file's offset just after it (stdin for sendmail). */
function readArgsLine(fd: number): string | null {
  const probe = Buffer.alloc(MAX_ARGS_LINE);
  const n = readSync(fd, probe, 0, probe.length, 0);
  const end = probe.subarray(0, n).indexOf(0x0a);
  if (end < 0) return null;
  // read it again without a position, so that the shared offset moves past it
  readSync(fd, Buffer.alloc(end + 1), 0, end + 1, null);
  return probe.subarray(0, end).toString('utf8');
}

export interface OfflineResult {
  name: string;
  result: 'enqueued' | 'kept' | 'skipped' | 'removed';
  reason?: string;
}

/** One offline file: the checks of offline_enqueue, then sendmail -S as its owner. */
async function enqueueOne(spool: string, name: string): Promise<OfflineResult> {
  const path = join(spool, OFFLINE_DIR, name);
  const skip = (reason: string): OfflineResult => {
    log('warn', null, 'daemon', 'offline', { file: name, result: 'skipped', reason });
    return { name, result: 'skipped', reason };
  };
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    return skip(`open: ${(err as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return skip('not a regular file');
    // a hard link to someone else's file would be sent as that someone
    if (st.nlink !== 1) return skip('hard-link');
    if (st.size === 0) {
      unlinkSync(path);
      return { name, result: 'removed', reason: 'empty' };
    }
    // without root, only the daemon's own user's files can be sent as their owner
    if (!isRoot() && st.uid !== process.getuid?.()) return skip(`owner uid ${st.uid} is not the daemon's user`);
    const pw = await getentPasswd(String(st.uid)).catch(() => null);
    if (!pw || pw.uid !== st.uid) return skip(`no user with uid ${st.uid}`);
    const first = readArgsLine(fd);
    if (first === null) return skip('no arguments line');
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [SENDMAIL_SCRIPT, '-S', ...decodeArgs(first)], {
        ...(isRoot() ? { uid: pw.uid, gid: pw.gid } : {}),
        // offline_enqueue: chdir(pw_dir), else "/"
        cwd: isDirectory(pw.directory) ? pw.directory : '/',
        env: { PATH: DEFAULT_PATH, TSMTPD_SPOOL: spool },
        stdio: [fd, 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (d: string) => { if (stderr.length < 4096) stderr += d; });
      child.once('error', (err) => { stderr = err.message; resolve(null); });
      child.once('close', (c) => {
        if (c !== 0) log('warn', null, 'daemon', 'offline', { file: name, user: pw.username, result: 'kept', exit: c ?? 'signal', error: stderr.trim() });
        resolve(c);
      });
    });
    if (code !== 0) return { name, result: 'kept' };
    unlinkSync(path);
    log('info', null, 'daemon', 'offline', { file: name, user: pw.username, result: 'enqueued' });
    return { name, result: 'enqueued' };
  } finally {
    closeSync(fd);
  }
}

/** offline_scan: every regular file at the top of `SPOOL/offline`, OFFLINE_QUEUEMAX at a time. */
export async function enqueueOffline(spool: string): Promise<OfflineResult[]> {
  let names: string[];
  try {
    names = readdirSync(join(spool, OFFLINE_DIR), { withFileTypes: true }).filter((d) => d.isFile()).map((d) => d.name).sort();
  } catch (err) {
    log('warn', null, 'daemon', 'offline', { error: (err as Error).message });
    return [];
  }
  const results: OfflineResult[] = [];
  const next = async (): Promise<void> => {
    for (let name = names.shift(); name !== undefined; name = names.shift()) results.push(await enqueueOne(spool, name));
  };
  await Promise.all(Array.from({ length: OFFLINE_QUEUEMAX }, next));
  return results;
}
