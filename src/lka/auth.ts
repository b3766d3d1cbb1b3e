/**
 * AUTH checks: the listener's credentials table (`user crypt-hash` lines, any scheme of the
 * system's crypt(3), as OpenSMTPD's crypt_checkpass takes them), or the system's accounts when no
 * table is named — a question for the parent, which alone may read the shadow file. A lookup
 * error is `error` (454), never `pass`. Hashes are checked off the event loop.
 */
import { readFile } from 'node:fs/promises';
import type { Req, Res } from '../bus/messages.js';
import type { Config } from '../config/types.js';
import { log } from '../log.js';
import type { TableSet } from '../table/types.js';
import type { CryptPool } from './crypt-pool.js';
import { credentialsPassword } from './credentials.js';

export type SystemAuth = (user: string, password: string) => Promise<Res<'lka.auth.system'>>;

export async function checkPassword(config: Config, tables: TableSet, req: Req<'smtp.auth.check'>, crypt: CryptPool, system: SystemAuth): Promise<Res<'smtp.auth.check'>> {
  const tableName = req.table ?? config.listeners[req.listener]?.authTable;
  try {
    if (!tableName) return await system(req.user, req.password);
    const table = tables.get(tableName);
    // lka_authenticate(): a table that registered `auth` checks the password itself
    const offloaded = await table?.authenticate(req.user, req.password);
    if (offloaded !== undefined) return { result: offloaded ? 'pass' : 'fail' };
    const value = (await table?.lookupCredentials(req.user))?.hash;
    const hash = value === undefined ? undefined : credentialsPassword(value);
    if (!hash) return { result: 'fail' };
    return { result: (await crypt.verify(hash, req.password)) ? 'pass' : 'fail' };
  } catch (err) {
    log('warn', null, 'lka', 'auth', { user: req.user, error: (err as Error).message });
    return { result: 'error' };
  }
}

/** System accounts, in the parent: the user's hash from /etc/shadow, checked off the loop. */
export async function checkSystemPassword(user: string, password: string, crypt: CryptPool): Promise<Res<'lka.auth.system'>> {
  try {
    const hash = await shadowHash(user);
    if (!hash) return { result: 'fail' };
    return { result: (await crypt.verify(hash, password)) ? 'pass' : 'fail' };
  } catch (err) {
    log('warn', null, 'parent', 'auth', { user, error: (err as Error).message });
    return { result: 'error' };
  }
}

/** The user's hash from /etc/shadow (readable by root only); undefined when absent. */
async function shadowHash(user: string): Promise<string | undefined> {
  const text = await readFile('/etc/shadow', 'utf8');
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    // any scheme the system's crypt(3) knows (verifyPassword refuses locked `!`/`*` entries)
    if (fields[0] === user && fields[1]) return fields[1];
  }
  return undefined;
}
