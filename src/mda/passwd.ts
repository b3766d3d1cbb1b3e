/**
 * The system account of an action's `user NAME` option, through getent(1) so that every NSS
 * source (files, LDAP, systemd) answers as getpwnam(3) would; Node itself has no getpwnam.
 */
import { execFile } from 'node:child_process';
import type { UserInfo } from '../queue/envelope.js';

/** POSIX portable user names plus what common systems allow; never an option for getent. */
const NAME_RE = /^[A-Za-z0-9_.][A-Za-z0-9_.$-]{0,63}$/;

export type PasswdLookup = (name: string) => Promise<UserInfo | null>;

/** One `passwd` line: `name:x:uid:gid:gecos:home:shell`. */
export function parsePasswdLine(line: string): UserInfo | null {
  const f = line.trim().split(':');
  if (f.length < 7) return null;
  const uid = Number(f[2]);
  const gid = Number(f[3]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid) || f[2] === '' || f[3] === '') return null;
  return { username: f[0]!, uid, gid, directory: f[5]! };
}

/** Null when the account does not exist; rejects when the lookup itself failed. */
export const getentPasswd: PasswdLookup = (name) => {
  if (!NAME_RE.test(name)) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    execFile('getent', ['passwd', name], { timeout: 10_000, env: { PATH: '/usr/bin:/bin' } }, (err, stdout) => {
      // getent exits 2 for "no such key"
      if (err && (err as { code?: unknown }).code === 2) return resolve(null);
      if (err) return reject(err);
      resolve(parsePasswdLine(stdout.split('\n')[0] ?? ''));
    });
  });
};
