/**
 * Checks across the whole configuration, once every statement is read: tables used for a
 * service their backend cannot serve, pki and ca of relays, pki files, duplicate listeners, rules.
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
  static: 'all', file: 'all', db: 'all', sqlite: 'all', proc: 'all',
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

function checkTable(config: Config, name: string | undefined, service: TableService, where: Where): void {
  if (name === undefined) return;
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
}

function checkListeners(config: Config): void {
  for (const l of config.listeners) {
    checkTable(config, l.authTable, 'credentials', l.where);
    checkTable(config, l.hostnames, 'addrname', l.where);
    checkTable(config, l.senders?.table, 'mailaddrmap', l.where);
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
    checkTable(config, a.alias, 'alias', a.where);
    checkTable(config, a.virtual, 'alias', a.where);
    checkTable(config, a.userbase, 'userinfo', a.where);
    const r = a.relay;
    if (!r) continue;
    checkTable(config, r.hostTable, 'relayhost', a.where);
    checkTable(config, r.domainTable, 'relayhost', a.where);
    checkTable(config, r.heloSrc, 'addrname', a.where);
    checkTable(config, r.srcTable, 'source', a.where);
    checkTable(config, r.authTable, 'credentials', a.where);
    if (r.pki && !config.pkis.has(r.pki)) err(a.where, `undefined pki: ${r.pki}`);
    if (r.ca && !config.cas.has(r.ca)) err(a.where, `undefined ca: ${r.ca}`);
    if (r.srs && !config.srs?.key) err(a.where, 'srs requires an srs key');
  }
}

const CRITERION_SERVICE: Record<string, TableService> = {
  'from-src': 'netaddr', 'from-rdns': 'domain', 'from-auth': 'credentials', 'from-mail-from': 'mailaddr',
  'for-domain': 'domain', 'for-rcpt-to': 'mailaddr', tag: 'string', helo: 'domain', auth: 'credentials',
  'mail-from': 'mailaddr', 'rcpt-to': 'mailaddr',
};

function checkRules(config: Config): void {
  if (config.rules.length === 0) {
    const last = [...config.listeners, ...config.actions.values()].reduce((n, x) => Math.max(n, x.where.line), 1);
    err({ file: config.file, line: last }, 'no rules, nothing to do');
  }
  for (const rule of config.rules) {
    for (const { criterion } of rule.criteria) {
      if ('table' in criterion && criterion.table && !criterion.table.regex) {
        checkTable(config, criterion.table.table, CRITERION_SERVICE[criterion.kind]!, rule.where);
      } else if ('table' in criterion && criterion.table) {
        checkTable(config, criterion.table.table, 'regex', rule.where);
      }
    }
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
}
