/**
 * The Table front: table(5) semantics per service over any backend — glob domains, CIDR
 * netaddrs, mailaddr patterns with sub-addresses, alias lists, userinfo and credentials — and
 * `openTables`, which opens every table of a config plus smtpd's builtin ones.
 */
import { networkInterfaces, hostname } from 'node:os';
import { domainToASCII } from 'node:url';
import type { Config, TableDecl } from '../config/types.js';
import { parseAliasValue } from './alias.js';
import { matchNetaddr } from './netaddr.js';
import { createTableBackend } from './registry.js';
import { StaticBackend } from './static.js';
import type { Credentials, ExpandTarget, Table, TableBackend, TableService, TableSet, UserEntry } from './types.js';
import { GetpwnamBackend } from './getpwnam.js';
import { trace } from '../trace.js';

/** Lower-case A-label form of a domain; the input unchanged when it is not one. */
function asciiDomain(d: string): string {
  const lower = d.toLowerCase().replace(/\.$/, '');
  return /^[\x00-\x7f]*$/.test(lower) ? lower : domainToASCII(lower) || lower;
}

/** `*` in a domain entry matches any run of characters, as OpenSMTPD's fnmatch-style check. */
export function matchDomain(entry: string, domain: string): boolean {
  const e = asciiDomain(entry);
  const d = asciiDomain(domain);
  if (!e.includes('*')) return e === d;
  const re = new RegExp(`^${e.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return re.test(d);
}

/**
 * mailaddr: `user`, `@domain`, `user@domain`, `user@*.domain`; an entry without a `+tag`
 * matches the address with its tag removed.
 */
export function matchMailaddr(entry: string, address: string, delim = '+'): boolean {
  const at = address.lastIndexOf('@');
  const user = (at < 0 ? address : address.slice(0, at)).toLowerCase();
  const domain = at < 0 ? '' : address.slice(at + 1);
  const plain = delim && user.includes(delim) ? user.slice(0, user.indexOf(delim)) : user;
  const eAt = entry.lastIndexOf('@');
  const eUser = (eAt < 0 ? entry : entry.slice(0, eAt)).toLowerCase();
  const eDomain = eAt < 0 ? null : entry.slice(eAt + 1);
  if (eDomain !== null && !matchDomain(eDomain, domain)) return false;
  if (eUser === '') return eDomain !== null;
  return eUser === user || eUser === plain;
}

function matchRegex(entry: string, value: string): boolean {
  const insensitive = entry.startsWith('(?i)');
  try {
    return new RegExp(insensitive ? entry.slice(4) : entry, insensitive ? 'i' : '').test(value);
  } catch {
    return false;
  }
}

export class TableFront implements Table {
  constructor(
    readonly name: string,
    readonly backendName: string,
    private readonly backend: TableBackend,
    private readonly subAddrDelim = '+',
  ) {}

  async match(service: TableService, key: string): Promise<boolean> {
    trace('lookup', null, 'lka', { table: this.name, backend: this.backendName, service, key });
    if (this.backend.check) return this.backend.check(service, key);
    // exact keys are answered by a lookup; patterns need every entry
    if (service === 'string' || service === 'source' || service === 'credentials') {
      return (await this.backend.lookup(service, key)) !== undefined;
    }
    const entries = await this.backend.entries(service);
    switch (service) {
      case 'domain':
        return entries.some((e) => matchDomain(e, key));
      case 'netaddr':
        return entries.some((e) => matchNetaddr(e, key));
      case 'mailaddr':
        return entries.some((e) => matchMailaddr(e, key, this.subAddrDelim));
      case 'regex':
        return entries.some((e) => matchRegex(e, key));
      default:
        return entries.includes(key.toLowerCase());
    }
  }

  async lookupAlias(key: string): Promise<ExpandTarget[] | undefined> {
    const v = await this.backend.lookup('alias', key);
    return v === undefined || v === '' ? undefined : parseAliasValue(v);
  }

  async authenticate(username: string, password: string): Promise<boolean | undefined> {
    if (!this.backend.check || !(await this.backend.offers?.('auth'))) return undefined;
    return this.backend.check('auth', `${username}:${password}`);
  }

  async lookupCredentials(username: string): Promise<Credentials | undefined> {
    const v = await this.backend.lookup('credentials', username);
    if (!v) return undefined;
    // relay credentials are `label user:password`; listener ones `user hash`
    return { username, hash: v };
  }

  async lookupUserinfo(username: string): Promise<UserEntry | undefined> {
    const v = await this.backend.lookup('userinfo', username);
    const m = v ? /^(\d+):(\d+):(\/.*)$/.exec(v) : null;
    return m ? { username, uid: Number(m[1]), gid: Number(m[2]), directory: m[3]! } : undefined;
  }

  async lookupMailaddrMap(key: string): Promise<string[] | undefined> {
    const v = await this.backend.lookup('mailaddrmap', key);
    return v ? v.split(/[\s,]+/).filter(Boolean) : undefined;
  }

  lookupString(service: 'addrname' | 'relayhost' | 'string', key: string): Promise<string | undefined> {
    return this.backend.lookup(service, key);
  }

  fetchSource(): Promise<string | undefined> {
    return this.backend.fetch('source');
  }

  update(): Promise<void> {
    return this.backend.update();
  }

  close(): Promise<void> {
    return this.backend.close();
  }
}

function localAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

/** smtpd's own tables, computed at start (`localnames` depends on the host's names and addresses). */
function builtinDecls(config: Config, serverName: string): TableDecl[] {
  const where = { file: '(builtin)', line: 0 };
  const list = (name: string, values: string[]): TableDecl => ({ name, backend: 'static', config: '', inline: { kind: 'list', values }, where });
  const addrs = localAddresses();
  const names = [...new Set(['localhost', hostname(), serverName, ...config.listeners.flatMap((l) => (l.hostname ? [l.hostname] : []))])];
  return [
    list('localhost', ['local', '127.0.0.0/8', '::1', ...addrs]),
    list('anyhost', ['local', '0.0.0.0/0', '::/0']),
    list('localnames', [...names, ...addrs.map((a) => (a.includes(':') ? `[ipv6:${a.toLowerCase()}]` : `[${a}]`))]),
    list('anydestination', ['*']),
  ];
}

/** One table, opened: for tools and tests that need a single table without a whole config. */
export async function openTable(decl: Pick<TableDecl, 'name' | 'backend' | 'config' | 'inline'>, opts: { timeoutMs?: number } = {}): Promise<TableFront> {
  const backend = createTableBackend(decl, opts);
  await backend.open();
  return new TableFront(decl.name, decl.backend, backend);
}

export async function openTables(config: Config, serverName = hostname()): Promise<TableSet> {
  const tables = new Map<string, TableFront>();
  const delim = config.smtp.subAddrDelim;
  const opened: TableFront[] = [];
  try {
    for (const decl of builtinDecls(config, serverName)) {
      const backend = new StaticBackend(decl);
      await backend.open();
      tables.set(decl.name, new TableFront(decl.name, 'builtin', backend, delim));
    }
    tables.set('getpwnam', new TableFront('getpwnam', 'getpwnam', new GetpwnamBackend(), delim));
    for (const decl of config.tables.values()) {
      const backend = createTableBackend(decl);
      try {
        await backend.open();
      } catch (err) {
        throw new Error(`${decl.where.file}:${decl.where.line}: table ${decl.name}: ${(err as Error).message}`);
      }
      const front = new TableFront(decl.name, decl.backend, backend, delim);
      opened.push(front);
      tables.set(decl.name, front);
    }
  } catch (err) {
    await Promise.all(opened.map((t) => t.close().catch(() => undefined)));
    throw err;
  }
  return {
    get: (name) => tables.get(name),
    async update(name) {
      const t = tables.get(name);
      if (!t) throw new Error(`no such table: ${name}`);
      await t.update();
    },
    async close() {
      await Promise.all([...tables.values()].map((t) => t.close().catch(() => undefined)));
    },
  };
}
