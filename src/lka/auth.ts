/**
 * AUTH checks: the listener's credentials table (`user crypt-hash` lines, bcrypt or
 * sha512-crypt as OpenSMTPD's crypt_checkpass takes them), or the system's shadow file when no
 * table is named and the daemon may read it. A lookup error is `error` (454), never `pass`.
 */
import { readFile } from 'node:fs/promises';
import type { Req, Res } from '../bus/messages.js';
import type { Config } from '../config/types.js';
import { log } from '../log.js';
import type { TableSet } from '../table/types.js';
import { credentialsPassword, verifyPassword } from './credentials.js';

export async function checkPassword(config: Config, tables: TableSet, req: Req<'smtp.auth.check'>): Promise<Res<'smtp.auth.check'>> {
  const tableName = req.table ?? config.listeners[req.listener]?.authTable;
  try {
    const value = tableName ? (await tables.get(tableName)?.lookupCredentials(req.user))?.hash : await shadowHash(req.user);
    const hash = value === undefined ? undefined : credentialsPassword(value);
    if (!hash) return { result: 'fail' };
    return { result: (await verifyPassword(hash, req.password)) ? 'pass' : 'fail' };
  } catch (err) {
    log('warn', null, 'lka', 'auth', { user: req.user, error: (err as Error).message });
    return { result: 'error' };
  }
}

/** The user's hash from /etc/shadow (readable by root only); undefined when absent. */
async function shadowHash(user: string): Promise<string | undefined> {
  const text = await readFile('/etc/shadow', 'utf8');
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === user && fields[1] && fields[1].startsWith('$')) return fields[1];
  }
  return undefined;
}
