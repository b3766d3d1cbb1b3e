/**
 * The certificates and private keys of the config's `pki` and `ca` declarations, read once by
 * the parent (the files are root's) and handed to the processes that need them: the smtp
 * workers (they terminate TLS) and the mta (client certificates, trust anchors). A private key
 * file others may read, or its group write, is refused, as OpenSMTPD's ssl_load_file refuses it
 * (at most 0740; `-n` says so first, with file:line: preflight.ts).
 */
import { readFileSync, statSync } from 'node:fs';
import type { Config } from '../config/types.js';

export interface Keyring {
  pkis: Record<string, { cert: Buffer; key: Buffer }>;
  cas: Record<string, Buffer>;
}

export const EMPTY_KEYRING: Keyring = { pkis: {}, cas: {} };

function load(path: string, what: string, secret: boolean): Buffer {
  try {
    if (secret) {
      const mode = statSync(path).mode;
      if (mode & 0o037) throw new Error(`insecure permissions ${(mode & 0o777).toString(8).padStart(4, '0')}: must be at most 0740`);
    }
    return readFileSync(path);
  } catch (err) {
    throw new Error(`${what} ${path}: ${(err as Error).message}`);
  }
}

/** Every pki and ca of the config; throws naming the declaration whose file cannot be used. */
export function loadKeyring(config: Config): Keyring {
  const ring: Keyring = { pkis: {}, cas: {} };
  for (const pki of config.pkis.values()) {
    if (!pki.cert || !pki.key) continue;
    ring.pkis[pki.name] = { cert: load(pki.cert, `pki ${pki.name}: certificate`, false), key: load(pki.key, `pki ${pki.name}: key`, true) };
  }
  for (const ca of config.cas.values()) ring.cas[ca.name] = load(ca.cert, `ca ${ca.name}:`, false);
  return ring;
}
