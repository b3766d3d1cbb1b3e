/**
 * Table backends by the name smtpd.conf gives them. A name tsmtpd does not implement is, as in
 * smtpd's table_create(), the external helper `table-NAME` of OpenSMTPD's libexec directory,
 * spoken to with the smtpd-tables(7) protocol; when there is no such helper, it is an error
 * (`tsmtpd -n` reports it at the table's line), never a fallback to another backend.
 */
import type { TableDecl } from '../config/types.js';
import { dbBackend } from './db.js';
import { mysqlFlavor } from './mysql.js';
import { postgresFlavor } from './postgres.js';
import { RedisBackend } from './redis.js';
import { RemoteSqlBackend } from './remote-sql.js';
import { GetpwnamBackend } from './getpwnam.js';
import { isExecutableFile, libexecDirs, tableHelper } from '../libexec.js';
import { PasswdBackend } from './passwd.js';
import { ProcBackend, type ProcOptions } from './proc.js';
import { SqliteBackend } from './sqlite.js';
import { StaticBackend } from './static.js';
import type { TableBackend } from './types.js';

type Decl = Pick<TableDecl, 'name' | 'backend' | 'config' | 'inline'> & { where?: TableDecl['where'] };
type Factory = (decl: Decl, opts: ProcOptions) => TableBackend;

const FACTORIES: Record<string, Factory> = {
  static: (d) => new StaticBackend(d),
  file: (d) => new StaticBackend(d),
  db: (d) => dbBackend(d.config),
  sqlite: (d) => new SqliteBackend(d.config),
  proc: (d, o) => new ProcBackend(d.name, d.config, o),
  getpwnam: () => new GetpwnamBackend(),
  passwd: (d) => new PasswdBackend(d.config),
  postgres: (d, o) => new RemoteSqlBackend(postgresFlavor, d.config, o.timeoutMs),
  mysql: (d, o) => new RemoteSqlBackend(mysqlFlavor, d.config, o.timeoutMs),
  redis: (d, o) => new RedisBackend(d.config, o.timeoutMs),
};

export function isNativeBackend(name: string): boolean {
  return Object.hasOwn(FACTORIES, name);
}

/** Where an external backend's helper is, or why there is none (the error `tsmtpd -n` prints). */
export function externalHelper(backend: string, dirs = libexecDirs()): { path: string } | { error: string } {
  const path = tableHelper(backend, dirs, isExecutableFile);
  return path ? { path } : { error: `backend "${backend}" does not exist: no table-${backend} in ${dirs.join(', ')}` };
}

export function createTableBackend(decl: Decl, opts: ProcOptions = {}): TableBackend {
  const factory = Object.hasOwn(FACTORIES, decl.backend) ? FACTORIES[decl.backend] : undefined;
  if (factory) return factory(decl, opts);
  const helper = externalHelper(decl.backend);
  if ('error' in helper) {
    const where = decl.where ? `${decl.where.file}:${decl.where.line}: ` : '';
    throw new Error(`${where}table ${decl.name}: ${helper.error}`);
  }
  return new ProcBackend(decl.name, { file: helper.path, args: decl.config ? [decl.config] : [], argv0: decl.name }, opts);
}
