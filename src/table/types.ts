/**
 * The contract between the lka and its tables: a backend stores raw entries and answers raw
 * lookups; the Table front above it turns them into table(5) semantics per service (CIDR
 * matching for netaddr, `@domain` keys for mailaddr, alias lists parsed into targets...).
 */
import type { TableService } from '../config/types.js';

export type { TableService };

/** What one backend does. Backends are passive: no timers, no knowledge of services' syntax. */
export interface TableBackend {
  /** Services this backend can answer, checked when the config names a table for a service. */
  readonly services: ReadonlySet<TableService> | 'all';
  /** Load or connect; throws with a clear message when the source cannot be used. */
  open(): Promise<void>;
  /** Reload (`tsmtpctl update table`): on failure it throws and keeps serving the old contents. */
  update(): Promise<void>;
  /** The raw value for a key (`''` for a key of a list table), or undefined when absent. */
  lookup(service: TableService, key: string): Promise<string | undefined>;
  /**
   * Whether the backend itself says it serves SERVICE: a proc table's `register|SERVICE`, which
   * smtpd keeps as t_services and table_check_service() asks (the `auth` service decides how
   * AUTH is checked). Backends without it declare their services statically.
   */
  offers?(service: TableService): Promise<boolean>;
  /** Backends that match on their side (proc, sqlite) answer membership here instead of entries(). */
  check?(service: TableService, key: string): Promise<boolean>;
  /** Every key (list tables) or every value, for match-style services (netaddr, domain, regex...). */
  entries(service: TableService): Promise<string[]>;
  /** One value for services that pick an entry (`source`, `relayhost` rotation...). */
  fetch(service: TableService): Promise<string | undefined>;
  close(): Promise<void>;
}

/** One target of an alias / virtual / forward expansion, as aliases(5) spells them. */
export type ExpandTarget =
  | { kind: 'username'; value: string }
  | { kind: 'address'; value: string }
  | { kind: 'command'; value: string }
  | { kind: 'file'; value: string }
  | { kind: 'include'; value: string }
  /** `error:code message` as OpenSMTPD supports in aliases. */
  | { kind: 'error'; code: number; enhanced?: string; text: string };

export interface UserEntry {
  username: string;
  uid: number;
  gid: number;
  directory: string;
}

export interface Credentials {
  username: string;
  /** A crypt(3) hash: `$2b$` bcrypt, `$6$` sha512-crypt, `$5$` sha256-crypt. */
  hash: string;
}

/** The front every role uses: table(5) semantics over any backend. */
export interface Table {
  readonly name: string;
  readonly backendName: string;
  /**
   * Does KEY match an entry of the table for SERVICE? domain: exact or `*.suffix`, case-blind;
   * netaddr: address inside a CIDR entry (v4, v6, v4-mapped); mailaddr: `user@domain`, `@domain`
   * or `user` entries; string / source / others: exact; regex tables: entries as regexes.
   */
  match(service: TableService, key: string): Promise<boolean>;
  /** alias / virtual lookups: undefined when the key is absent. */
  lookupAlias(key: string): Promise<ExpandTarget[] | undefined>;
  lookupCredentials(username: string): Promise<Credentials | undefined>;
  /**
   * lka_authenticate()'s offloading: a table that registered the `auth` service is asked
   * `check|auth|user:password` and its answer is the verdict; undefined for any other table.
   */
  authenticate(username: string, password: string): Promise<boolean | undefined>;
  lookupUserinfo(username: string): Promise<UserEntry | undefined>;
  /** mailaddrmap: the addresses a user may send as (senders option). */
  lookupMailaddrMap(key: string): Promise<string[] | undefined>;
  /** addrname: the name for a local address; relayhost: the URL for a domain or label. */
  lookupString(service: 'addrname' | 'relayhost' | 'string', key: string): Promise<string | undefined>;
  /** source / helo-src: pick one (rotating) source address. */
  fetchSource(): Promise<string | undefined>;
  update(): Promise<void>;
  close(): Promise<void>;
}

/** All tables of a config, builtins included, opened together by the lka. */
export interface TableSet {
  get(name: string): Table | undefined;
  /** Reload one table; throws (and keeps the old contents) when the new ones cannot be loaded. */
  update(name: string): Promise<void>;
  close(): Promise<void>;
}

/** A table failure; `tempfail` when the source may recover (a proc child died or stalled). */
export class TableError extends Error {
  override name = 'TableError';
  readonly code = 'TSMTPD_ERR_TABLE';
  constructor(message: string, readonly tempfail = false) {
    super(message);
  }
}
