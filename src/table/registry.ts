/**
 * Table backends by the name smtpd.conf gives them. A name without an implementation is an
 * error at start, never a silent fallback to another backend.
 */
import type { TableDecl } from '../config/types.js';
import { dbBackend } from './db.js';
import { GetpwnamBackend } from './getpwnam.js';
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
};

export function createTableBackend(decl: Decl, opts: ProcOptions = {}): TableBackend {
  const factory = Object.hasOwn(FACTORIES, decl.backend) ? FACTORIES[decl.backend] : undefined;
  const where = decl.where ? `${decl.where.file}:${decl.where.line}: ` : '';
  if (!factory) throw new Error(`${where}table ${decl.name}: backend ${decl.backend} is not available in this build`);
  return factory(decl, opts);
}
