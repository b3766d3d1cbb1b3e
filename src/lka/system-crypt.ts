/**
 * The system's crypt(3) (libxcrypt's libcrypt.so.1 on Linux), called through koffi: every scheme
 * the system hashes passwords with is checked the way OpenSMTPD checks it (crypt() of the password
 * with the stored hash as its setting, compared with the hash) — yescrypt (`$y$`, Debian 12's
 * passwd(1) default), gost-yescrypt, scrypt, bcrypt, sha512/sha256-crypt, md5-crypt and whatever
 * else this libcrypt was built with. crypt_rn() is the reentrant form: the checks run in several
 * worker threads at once, and it returns NULL, not a failure token, for a setting it cannot use.
 */
import { createRequire } from 'node:module';

type CryptRn = (phrase: string, setting: string, data: Buffer, size: number) => string | null;

/** sizeof(struct crypt_data) in libxcrypt. */
const CRYPT_DATA_SIZE = 32768;

let loaded: { crypt: CryptRn; data: Buffer } | null | undefined;

function load(): { crypt: CryptRn; data: Buffer } | null {
  if (loaded !== undefined) return loaded;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    const lib = koffi.load('libcrypt.so.1');
    const crypt = lib.func('const char *crypt_rn(const char *phrase, const char *setting, void *data, int size)') as CryptRn;
    // one work area per thread (each worker thread loads this module anew)
    loaded = { crypt, data: Buffer.alloc(CRYPT_DATA_SIZE) };
  } catch {
    loaded = null;
  }
  return loaded;
}

/** Whether the system's crypt(3) could be loaded here. */
export function hasSystemCrypt(): boolean {
  return load() !== null;
}

/** crypt(3) of `password` with `setting` (a stored hash or a salt); null when the scheme is unknown to this libcrypt. */
export function systemCrypt(password: string, setting: string): string | null {
  const c = load();
  if (!c) return null;
  // a NUL would end the C string early: such a password is checked as no password, never cut
  if (password.includes('\0') || setting.includes('\0')) return null;
  const out = c.crypt(password, setting, c.data, CRYPT_DATA_SIZE);
  c.data.fill(0);
  return out && out.length > 0 && !out.startsWith('*') ? out : null;
}
