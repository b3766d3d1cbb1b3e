/**
 * Who each process runs as. As root, the parent keeps root and every other process runs as an
 * unprivileged system user: `_tsmtpd` for the roles, `_tsmtpq` for the queue, which alone owns
 * the spool's queue directories (mode 0700), as OpenSMTPD's `_smtpd` and `_smtpq`. The users are
 * created at start when missing, as OpenSMTPD's packages create theirs. Without root, every
 * process runs as the invoking user and nothing is created.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, renameSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { log } from '../log.js';
import { parsePasswdLine } from '../mda/passwd.js';

export interface Account {
  name: string;
  uid: number;
  gid: number;
}

export interface Accounts {
  /** smtp, lka, mta, control. */
  unprivileged: Account;
  /** queue and scheduler. */
  queue: Account;
}

export const DEFAULT_USERS = { unprivileged: '_tsmtpd', queue: '_tsmtpq' };

/** The queue's directories under the spool, each the queue user's with mode 0700. */
export const QUEUE_DIRS = ['incoming', 'queue', 'corrupt', 'temporary', 'purge', 'spare'];

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

function lookup(name: string): Account | null {
  try {
    const line = execFileSync('getent', ['passwd', name], { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    const info = parsePasswdLine(line.split('\n')[0] ?? '');
    return info ? { name, uid: info.uid, gid: info.gid } : null;
  } catch {
    return null;
  }
}

/** The account, created as a locked system user with its own group when it does not exist. */
export function ensureUser(name: string): Account {
  const found = lookup(name);
  if (found) return found;
  try {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/var/empty', '--shell', '/usr/sbin/nologin', name], {
      stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
  } catch (err) {
    // two daemons starting together may race to create it: look again before failing
    const raced = lookup(name);
    if (raced) return raced;
    throw new Error(`cannot create user ${name}: ${(err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message}`);
  }
  const made = lookup(name);
  if (!made) throw new Error(`user ${name} was created but cannot be found`);
  log('info', null, 'daemon', 'users', { created: name, uid: made.uid });
  return made;
}

/** The accounts of the processes: system users as root, the invoking user otherwise. */
export function accounts(names: { unprivileged: string; queue: string }): Accounts {
  if (!isRoot()) {
    const me: Account = { name: String(process.getuid?.() ?? ''), uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
    return { unprivileged: me, queue: me };
  }
  return { unprivileged: ensureUser(names.unprivileged), queue: ensureUser(names.queue) };
}

/**
 * The queue's directories, made and given to the queue user with mode 0700; the spool itself
 * stays the parent's (0711: others reach the enqueue socket but list nothing). A directory
 * found with another owner or mode is corrected, as OpenSMTPD's setup_spool does.
 */
export function prepareQueueDirs(spool: string, owner: Account): void {
  if (isRoot()) mustReach(spool, owner);
  for (const name of QUEUE_DIRS) {
    const dir = join(spool, name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
    // a spool written by a daemon that ran everything as root (before privilege separation)
    if (isRoot() && (st.uid !== owner.uid || st.gid !== owner.gid)) chownTree(dir, owner);
    if ((st.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
  }
  // the SQLite queue lived at the spool's top before queue/ became the queue user's alone
  for (const suffix of ['', '-wal', '-shm']) {
    const old = join(spool, `queue.sqlite${suffix}`);
    if (existsSync(old) && !existsSync(join(spool, 'queue', `queue.sqlite${suffix}`))) {
      renameSync(old, join(spool, 'queue', `queue.sqlite${suffix}`));
      if (isRoot()) chownSync(join(spool, 'queue', `queue.sqlite${suffix}`), owner.uid, owner.gid);
    }
  }
}

/** Every directory above `path` must let `who` through, or its process fails to start far from the cause. */
export function mustReach(path: string, who: Account): void {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const st = statSync(dir);
    const bit = st.uid === who.uid ? 0o100 : st.gid === who.gid ? 0o010 : 0o001;
    if (!(st.mode & bit)) {
      throw new Error(`user ${who.name} cannot reach ${path}: ${dir} is mode ${(st.mode & 0o777).toString(8)}, not searchable by ${who.name}`);
    }
    if (dir === '/') return;
  }
}

function chownTree(path: string, owner: Account): void {
  chownSync(path, owner.uid, owner.gid);
  if (!lstatSync(path).isDirectory()) return;
  for (const name of readdirSync(path)) chownTree(join(path, name), owner);
}
