/**
 * Password checks against crypt(3) hashes as OpenSMTPD's credentials tables hold them: bcrypt
 * (`$2a$`, `$2b$`, `$2y$`, what `smtpctl encrypt` prints) and sha512-/sha256-crypt (`$6$`, `$5$`,
 * what `openssl passwd -6` and most shadow files hold). Any other format is refused, not guessed.
 */
import bcrypt from 'bcryptjs';
import { verify as verifyShaCrypt } from 'unixcrypt';

export type HashScheme = 'bcrypt' | 'sha512-crypt' | 'sha256-crypt' | 'unknown';

export function hashScheme(hash: string): HashScheme {
  if (/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) return 'bcrypt';
  if (/^\$6\$/.test(hash)) return 'sha512-crypt';
  if (/^\$5\$/.test(hash)) return 'sha256-crypt';
  return 'unknown';
}

/** bcryptjs knows $2a$/$2b$; $2y$ (PHP's name for the fixed variant) is the same algorithm. */
export async function verifyPassword(hash: string, password: string): Promise<boolean> {
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
