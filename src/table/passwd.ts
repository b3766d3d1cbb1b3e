/**
 * The `passwd` backend: a passwd(5)-format file, `user:hash:uid:gid:gecos:home:shell`, as
 * OpenSMTPD-extras' table-passwd reads it and Dovecot's passwd-file shares it (extra fields after
 * the shell are allowed). It serves credentials (`user:hash`) and userinfo (`uid:gid:home`); a
 * field a service needs that is empty or malformed is a lookup error, never a guess.
 */
import { readFile } from 'node:fs/promises';
import type { TableBackend, TableService } from './types.js';
import { TableError } from './types.js';

interface Entry {
  name: string;
  hash: string;
  uid: string;
  gid: string;
  home: string;
}

/** The lines of a passwd file by user name; `#` starts a comment anywhere on a line. */
export function parsePasswd(text: string, file: string): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').replace(/\r$/, '');
    if (line === '') return;
    const f = line.split(':');
    // table_passwd.c parse_passwd_entry(): name to home must be there, the shell may be absent
    if (f.length < 6 || f[0] === '') throw new TableError(`${file}:${i + 1}: invalid entry`);
    entries.set(f[0]!, { name: f[0]!, hash: f[1]!, uid: f[2]!, gid: f[3]!, home: f[5]! });
  });
  return entries;
}

const ID = /^\d{1,10}$/;

/** The value smtpd's table_parse_lookup() reads for the service (table_passwd_lookup()). */
export function passwdValue(e: Entry, service: TableService): string {
  if (service === 'credentials') {
    if (e.hash === '') throw new TableError(`passwd entry ${e.name} has no password`);
    return `${e.name}:${e.hash}`;
  }
  if (!ID.test(e.uid) || !ID.test(e.gid) || Number(e.uid) > 0xffffffff || Number(e.gid) > 0xffffffff || e.home === '') {
    throw new TableError(`passwd entry ${e.name} lacks a uid, gid or home`);
  }
  return `${e.uid}:${e.gid}:${e.home}`;
}

export class PasswdBackend implements TableBackend {
  readonly services = new Set<TableService>(['credentials', 'userinfo']);
  private users = new Map<string, Entry>();

  constructor(private readonly path: string) {}

  async open(): Promise<void> {
    this.users = parsePasswd(await readFile(this.path, 'utf8'), this.path);
  }

  update(): Promise<void> {
    return this.open();
  }

  async lookup(service: TableService, key: string): Promise<string | undefined> {
    if (!this.services.has(service)) throw new TableError(`passwd tables serve no ${service} lookups`);
    // smtpd lowercases every key it asks for; names are kept as written, as table-passwd keeps them
    const e = this.users.get(key.toLowerCase());
    return e ? passwdValue(e, service) : undefined;
  }

  async entries(service: TableService): Promise<string[]> {
    throw new TableError(`passwd tables cannot list ${service} entries`);
  }

  async fetch(): Promise<string | undefined> {
    return undefined;
  }

  async close(): Promise<void> {}
}
