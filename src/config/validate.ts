/**
 * Checks across the whole configuration, once every statement is read: tables used for a
 * service their backend cannot serve or in a shape the use does not take (a list where a mapping
 * is wanted), pki and ca of relays, pki files, duplicate listeners, rules.
 * (Names must be declared before they are used: the grammar checks that as it reads, as smtpd's
 * one-pass parser does.) Each error points at the line of the statement that made the reference.
 */
import { ConfigError } from '../errors.js';
import type { Config, TableService, Where } from './types.js';

/**
 * Services each native table backend can answer; the table registry must agree with this list.
 * An external `table-NAME` helper says what it serves only once it runs, so it may stand anywhere
 * (as smtpd's proc backend).
 */
export const BACKEND_SERVICES: Record<string, readonly TableService[] | 'all'> = {
  static: 'all', file: 'all', db: 'all', sqlite: 'all', proc: 'all', postgres: 'all', mysql: 'all', redis: 'all',
  getpwnam: ['userinfo'],
  passwd: ['credentials', 'userinfo'],
};

/** Tables smtpd defines itself, with the services they serve. */
export const BUILTIN_TABLES: Record<string, readonly TableService[]> = {
  localhost: ['netaddr'],
  anyhost: ['netaddr'],
  localnames: ['domain'],
  anydestination: ['domain'],
  getpwnam: ['userinfo'],
};

function err(where: Where, message: string): never {
  throw new ConfigError(where.file, where.line, message);
}

/** What shape of table a use takes: smtpd's table_check_use() flags (T_LIST, T_HASH). */
export type TableShape = 'list' | 'map';

/** One place a table is used: for which service, in which shapes of static table, where. */
export interface TableUse {
  table: string;
  service: TableService;
  /** Shapes a static table may have here; a dynamic one (db, sqlite, helpers...) may stand anywhere. */
  shapes: readonly TableShape[];
  /** The word of smtpd's message: `table "t" may not be used for alias lookups`. */
  what: string;
  where: Where;
}

const LIST = ['list'] as const;
const MAP = ['map'] as const;
const ANY = ['list', 'map'] as const;

/** Rule criteria as parse.y's match_option checks them: service, shapes, and the word it says. */
const CRITERIA: Record<string, [TableService, readonly TableShape[], string]> = {
  'from-src': ['netaddr', LIST, 'from'], 'from-rdns': ['domain', LIST, 'rdns'], 'from-auth': ['credentials', LIST, 'from'],
  'from-mail-from': ['mailaddr', ANY, 'from'], 'for-domain': ['domain', LIST, "'for'"], 'for-rcpt-to': ['mailaddr', ANY, 'for'],
  tag: ['string', LIST, 'tag'], helo: ['domain', LIST, 'helo'], auth: ['credentials', ANY, 'auth'],
  'mail-from': ['mailaddr', ANY, 'mail-from'], 'rcpt-to': ['mailaddr', ANY, 'rcpt-to'],
};

/** Every table a listener, action or rule uses (builtin filter conditions take any table). */
export function tableUses(config: Config): TableUse[] {
  const uses: TableUse[] = [];
  const use = (table: string | undefined, service: TableService, shapes: readonly TableShape[], what: string, where: Where) => {
    if (table !== undefined) uses.push({ table, service, shapes, what, where });
  };
  for (const l of config.listeners) {
    use(l.authTable, 'credentials', ANY, 'auth', l.where);
    use(l.hostnames, 'addrname', MAP, 'hostnames', l.where);
    use(l.senders?.table, 'mailaddrmap', MAP, 'senders', l.where);
  }
  for (const a of config.actions.values()) {
    use(a.alias, 'alias', MAP, 'alias', a.where);
    use(a.virtual, 'alias', MAP, 'virtual', a.where);
    use(a.userbase, 'userinfo', MAP, 'userbase', a.where);
    const r = a.relay;
    use(r?.hostTable, 'relayhost', LIST, 'host', a.where);
    use(r?.domainTable, 'relayhost', MAP, 'host', a.where);
    use(r?.heloSrc, 'addrname', MAP, 'helo-source', a.where);
    use(r?.srcTable, 'source', ANY, 'source', a.where);
    use(r?.authTable, 'credentials', MAP, 'auth', a.where);
  }
  for (const rule of config.rules) {
    for (const { criterion } of rule.criteria) {
      if (!('table' in criterion) || !criterion.table) continue;
      const [service, shapes, what] = CRITERIA[criterion.kind]!;
      if (criterion.table.regex) use(criterion.table.table, 'regex', LIST, what, rule.where);
      else use(criterion.table.table, service, shapes, what, rule.where);
    }
  }
  return uses;
}

/** The shape check of table_check_use(): a static table of the wrong shape, named as smtpd names it. */
export function shapeError(use: TableUse, shape: TableShape): string | null {
  return use.shapes.includes(shape) ? null : `table "${use.table}" may not be used for ${use.what} lookups`;
}

/** The service the backend can answer, and for inline tables the shape (file tables: preflight). */
function checkUse(config: Config, use: TableUse): void {
  const { table: name, service, where } = use;
  const builtin = Object.hasOwn(BUILTIN_TABLES, name) ? BUILTIN_TABLES[name] : undefined;
  if (builtin) {
    if (!builtin.includes(service)) err(where, `table ${name} cannot be used for ${service} lookups`);
    return;
  }
  const table = config.tables.get(name);
  if (!table) err(where, `undefined table: ${name}`);
  const services = Object.hasOwn(BACKEND_SERVICES, table.backend) ? BACKEND_SERVICES[table.backend] : 'all';
  if (services !== 'all' && !services?.includes(service)) {
    err(where, `table ${name} (${table.backend}) cannot be used for ${service} lookups`);
  }
  const shape = table.inline ? shapeError(use, table.inline.kind) : null;
  if (shape) err(where, shape);
}

function checkListeners(config: Config): void {
  for (const l of config.listeners) {
  }
  const seen = new Set<string>();
  for (const l of config.listeners) {
    if (l.kind !== 'inet') continue;
    const key = `${l.interface} ${l.family} ${l.port}`;
    if (seen.has(key)) err(l.where, `duplicate listener: ${l.interface} port ${l.port}`);
    seen.add(key);
  }
}

function checkActions(config: Config): void {
  for (const a of config.actions.values()) {
    const r = a.relay;
    if (!r) continue;
    if (r.pki && !config.pkis.has(r.pki)) err(a.where, `undefined pki: ${r.pki}`);
    if (r.ca && !config.cas.has(r.ca)) err(a.where, `undefined ca: ${r.ca}`);
  }
}

function checkRules(config: Config): void {
  if (config.rules.length === 0) {
    const last = [...config.listeners, ...config.actions.values()].reduce((n, x) => Math.max(n, x.where.line), 1);
    err({ file: config.file, line: last }, 'no rules, nothing to do');
  }
}

function checkPkis(config: Config): void {
  for (const p of config.pkis.values()) {
    if (!p.cert) err(p.where, `pki ${p.name}: no certificate file`);
    if (!p.key) err(p.where, `pki ${p.name}: no key file`);
  }
}

export function validate(config: Config): void {
  checkPkis(config);
  checkListeners(config);
  checkActions(config);
  checkRules(config);
  for (const use of tableUses(config)) checkUse(config, use);
}
