/**
 * Password checks against crypt(3) hashes as OpenSMTPD's credentials tables and the system's
 * shadow file hold them. With the system's crypt(3) (system-crypt.ts) every scheme it supports
 * is checked as OpenSMTPD's crypt_checkpass() does: crypt(password, hash) must give the hash.
 * Where it cannot be loaded, bcrypt (`$2a$`, `$2b$`, `$2y$`) and sha512-/sha256-crypt (`$6$`,
 * `$5$`) are checked in JavaScript. Any other format is refused, not guessed.
 */
import { timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { verify as verifyShaCrypt } from 'unixcrypt';
import { hasSystemCrypt, systemCrypt } from './system-crypt.js';

export type HashScheme = 'bcrypt' | 'sha512-crypt' | 'sha256-crypt' | 'unknown';

export function hashScheme(hash: string): HashScheme {
  if (/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) return 'bcrypt';
  if (/^\$6\$/.test(hash)) return 'sha512-crypt';
  if (/^\$5\$/.test(hash)) return 'sha256-crypt';
  return 'unknown';
}

export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  // an empty or locked hash (`*`, `!...`, `x`) matches no password, whatever crypt() would make of it
  if (hash.length < 2 || /^[*!]/.test(hash) || password === '') return false;
  if (hasSystemCrypt()) return sameString(systemCrypt(password, hash), hash);
  return verifyInJs(hash, password);
}

function sameString(a: string | null, b: string): boolean {
  if (a === null) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** bcryptjs knows $2a$/$2b$; $2y$ (PHP's name for the fixed variant) is the same algorithm. */
async function verifyInJs(hash: string, password: string): Promise<boolean> {
  switch (hashScheme(hash)) {
    case 'bcrypt':
      return bcrypt.compare(password, hash.replace(/^\$2y\$/, '$2b$'));
    case 'sha512-crypt':
    case 'sha256-crypt':
      try {
        return verifyShaCrypt(password, hash);
      } catch {
        return false;
      }
    default:
      return false;
  }
}

/**
 * The password part of a credentials value, as smtpd's table_parse_lookup() reads it: a value
 * without a colon is the hash itself (`user $2b$...` tables), `user:hash` (passwd and proc
 * tables) is split at the first colon. A value with nothing on one side of the colon is invalid.
 */
export function credentialsPassword(value: string): string | undefined {
  const colon = value.indexOf(':');
  if (colon < 0) return value.length >= 3 ? value : undefined;
  if (colon === 0 || colon === value.length - 1) return undefined;
  return value.slice(colon + 1);
}
