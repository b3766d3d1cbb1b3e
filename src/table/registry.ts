/**
 * Table backends by the name smtpd.conf gives them. A name without an implementation is an
 * error at start, never a silent fallback to another backend.
 */
import type { TableDecl } from '../config/types.js';
import { GetpwnamBackend } from './getpwnam.js';
import { StaticBackend } from './static.js';
import type { TableBackend } from './types.js';

type Factory = (decl: TableDecl) => TableBackend;

const FACTORIES: Record<string, Factory> = {
  static: (d) => new StaticBackend(d),
  file: (d) => new StaticBackend(d),
  getpwnam: () => new GetpwnamBackend(),
};

export function registerTableBackend(name: string, factory: Factory): void {
  FACTORIES[name] = factory;
}

export function createTableBackend(decl: TableDecl): TableBackend {
  const factory = Object.hasOwn(FACTORIES, decl.backend) ? FACTORIES[decl.backend] : undefined;
  if (!factory) throw new Error(`${decl.where.file}:${decl.where.line}: table ${decl.name}: backend ${decl.backend} is not available in this build`);
  return factory(decl);
}
