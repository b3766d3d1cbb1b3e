/**
 * Tables in the grammar: `table NAME ...` declarations, and every place a table may stand,
 * which OpenSMTPD's grammar calls `tables`: a reference `<name>`, an inline `{ ... }` list or
 * mapping, or a single literal value (the last two become anonymous `<dynamic:N>` tables).
 */
import type { Cursor } from './cursor.js';
import type { Config, TableDecl, TableRef } from './types.js';
import { BUILTIN_TABLES } from './validate.js';

/** `{ a, b }` or `{ k = v, k2 => v2 }` once the `{` is next (at least one entry, smtpd.conf(5)). */
function inlineContents(c: Cursor): NonNullable<TableDecl['inline']> {
  const values: string[] = [];
  const entries: [string, string][] = [];
  c.braces('table entries', () => {
    const key = c.name('a table entry');
    if (c.acceptKind('=')) entries.push([key, c.name('a value')]);
    else values.push(key);
    if (values.length > 0 && entries.length > 0) c.fail('syntax error: table mixes list entries and key = value entries');
  });
  return entries.length > 0 ? { kind: 'map', entries } : { kind: 'list', values };
}

/** `<dynamic:N>`, numbered from 0 as smtpd's table_create() numbers its anonymous tables. */
function anonymous(config: Config, c: Cursor, inline: NonNullable<TableDecl['inline']>): string {
  let n = [...config.tables.keys()].filter((k) => k.startsWith('<dynamic:')).length;
  while (config.tables.has(`<dynamic:${n}>`)) n++;
  const name = `<dynamic:${n}>`;
  config.tables.set(name, { name, backend: 'static', config: '', inline, where: c.where });
  return name;
}

/** Can the next token begin a table? A keyword cannot: it is the next option or criterion. */
export function startsTable(c: Cursor): boolean {
  const t = c.peekToken();
  return !!t && (t.kind === 'table' || t.kind === '{' || t.kind === 'string' || (t.kind === 'word' && !t.keyword));
}

/**
 * `<name>`, `{ ... }` or a literal value (OpenSMTPD's `tables`: tableref | tablenew). smtpd reads
 * its config in one pass, so `<name>` must be declared above the line that uses it.
 */
export function tableRef(c: Cursor, config: Config, regex = false): TableRef {
  if (c.is('table')) {
    const token = c.peekToken()!;
    const name = c.table();
    if (!config.tables.has(name) && !Object.hasOwn(BUILTIN_TABLES, name)) c.fail(`undefined table: ${name}`, token);
    return { table: name, regex };
  }
  if (c.is('{')) return { table: anonymous(config, c, inlineContents(c)), regex };
  const value = c.name('a <table>, { ... } or a value');
  return { table: anonymous(config, c, { kind: 'list', values: [value] }), regex };
}

/** The table's name, for options that take `tables` (alias, virtual, hostnames, senders...). */
export function tableName(c: Cursor, config: Config): string {
  return tableRef(c, config).table;
}

/** `[regex] tables`, required. */
export function matchTable(c: Cursor, config: Config): TableRef {
  return tableRef(c, config, c.accept('regex'));
}

/** `[regex] [tables]`: nothing when neither `regex` nor a table follows (`from rdns`, `auth`). */
export function optionalMatchTable(c: Cursor, config: Config): TableRef | undefined {
  if (c.accept('regex')) return tableRef(c, config, true);
  return startsTable(c) ? tableRef(c, config) : undefined;
}

/** Backends tsmtpd implements itself; any other name is an external `table-NAME` helper. */
export const NATIVE_BACKENDS = ['static', 'file', 'db', 'sqlite', 'proc', 'getpwnam', 'passwd', 'postgres', 'mysql', 'redis'];

/** `table NAME [backend:]path`, `table NAME backend` or `table NAME { ... }` (smtpd.conf(5)). */
export function parseTable(c: Cursor, config: Config): void {
  const name = c.name('a table name');
  if (config.tables.has(name)) c.fail(`table already defined: ${name}`);
  const where = c.where;
  if (c.is('{')) {
    const inline = inlineContents(c);
    c.end();
    return void config.tables.set(name, { name, backend: 'static', config: '', inline, where });
  }
  const spec = c.name('a table backend and path, or { ... }');
  c.end();
  let backend = 'file';
  let conf = spec;
  if (!spec.startsWith('/')) {
    const colon = spec.indexOf(':');
    backend = colon < 0 ? spec : spec.slice(0, colon);
    conf = colon < 0 ? '' : spec.slice(colon + 1);
    if (colon >= 0 && !isPath(conf)) c.fail(`invalid backend parameter for table: ${name} (${backend}: needs an absolute path)`);
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(backend)) c.fail(`invalid table backend: ${backend}`);
  if (['file', 'db', 'passwd', 'postgres', 'mysql', 'redis'].includes(backend) && conf === '') c.fail(`table ${name}: ${backend} needs a path`);
  config.tables.set(name, { name, backend: backend === 'static' ? 'file' : backend, config: conf, where });
}

/**
 * OpenSMTPD wants an absolute path after `backend:`. tsmtpd also takes `./relative` (from the
 * directory it was started in), so a checkout's example config runs as it is.
 */
function isPath(conf: string): boolean {
  return conf.startsWith('/') || conf.startsWith('./');
}
