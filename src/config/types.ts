/**
 * The typed, validated configuration that the smtpd.conf parser yields and every role reads.
 * Names follow smtpd.conf(5); sizes are bytes, delays are seconds.
 */

/** Where a directive came from, so later checks can still report `file:line`. */
export interface Where {
  file: string;
  line: number;
}

export type TableService =
  | 'alias'
  | 'domain'
  | 'credentials'
  | 'netaddr'
  | 'userinfo'
  | 'source'
  | 'mailaddr'
  | 'addrname'
  | 'mailaddrmap'
  | 'relayhost'
  | 'string'
  | 'regex'
  /** smtpd-tables(7): check only, the key `user:password` (a proc table that authenticates). */
  | 'auth';

/** A table declaration: `table NAME backend:config`, `table NAME /path`, or an inline list/map. */
export interface TableDecl {
  name: string;
  /** Backend name as found in the table registry: static, file, db, sqlite, proc, getpwnam, ... */
  backend: string;
  /** Backend configuration: a path, a proc config string; empty for inline tables. */
  config: string;
  /** Inline contents (`{ a, b }` or `{ k = v }`); undefined for file-backed tables. */
  inline?: { kind: 'list'; values: string[] } | { kind: 'map'; entries: [string, string][] };
  where: Where;
}

/** A table reference inside a rule or option: `<name>` or a literal turned into an anonymous table. */
export interface TableRef {
  table: string;
  regex: boolean;
}

export interface PkiDecl {
  name: string;
  cert?: string;
  key?: string;
  dhe: 'none' | 'auto';
  where: Where;
}

export interface CaDecl {
  name: string;
  cert: string;
  where: Where;
}

export type TlsMode = 'none' | 'starttls' | 'require' | 'smtps';

export interface Listener {
  /** 'socket' for `listen on socket`, otherwise an interface name, address, host name or `all`. */
  kind: 'inet' | 'socket';
  /** What was written after `listen on`: `lo`, `127.0.0.1`, `::1`, `localhost`, `all`, `egress`... */
  interface: string;
  family: 'any' | 'inet4' | 'inet6';
  port: number;
  tls: TlsMode;
  /** Client certificate required (`tls-require verify`, `smtps verify`). */
  tlsVerify: boolean;
  pki: string[];
  ca?: string;
  ciphers?: string;
  protocols?: string;
  /** AUTH: not offered, required (`auth`), or offered (`auth-optional`). */
  auth: 'none' | 'required' | 'optional';
  /** Credentials table for AUTH; undefined means system accounts. */
  authTable?: string;
  hostname?: string;
  /** addrname table choosing the banner name per local address. */
  hostnames?: string;
  maskSrc: boolean;
  noDsn: boolean;
  senders?: { table: string; masquerade: boolean };
  tag?: string;
  /** Filter or chain name attached to this listener (an inline `{a, b}` chain gets a generated name). */
  filter?: string;
  proxyV2: boolean;
  receivedAuth: boolean;
  /** The addresses to bind, found at start (daemon/listen-addresses.ts); link-local ones as `fe80::1%eth0`. */
  addresses?: string[];
  where: Where;
}

export type ActionMethod =
  | { kind: 'mbox' }
  | { kind: 'maildir'; path?: string; junk: boolean }
  | { kind: 'mda'; command: string }
  | { kind: 'lmtp'; destination: string; rcptTo: boolean }
  | { kind: 'expand-only' }
  | { kind: 'forward-only' }
  | { kind: 'relay' };

export interface RelayOptions {
  /** Smarthost URL (`smtp+tls://label@host:port`) or `<table>` of relayhost entries. */
  host?: string;
  hostTable?: string;
  /** domain → relay URL table. */
  domainTable?: string;
  backup: boolean;
  backupMx?: string;
  helo?: string;
  heloSrc?: string;
  /** Source address literal or table of source addresses. */
  src?: string;
  srcTable?: string;
  pki?: string;
  ca?: string;
  tls: 'opportunistic' | 'required' | 'no-verify';
  protocols?: string;
  ciphers?: string;
  authTable?: string;
  mailFrom?: string;
  srs: boolean;
}

export interface Action {
  name: string;
  method: ActionMethod;
  alias?: string;
  virtual?: string;
  userbase?: string;
  user?: string;
  wrapper?: string;
  /** Per-action queue ttl in seconds. */
  ttl?: number;
  relay?: RelayOptions;
  where: Where;
}

/** One criterion of a `match` rule, negated with `!`. */
export type MatchCriterion =
  | { kind: 'from-any' }
  | { kind: 'from-local' }
  | { kind: 'from-socket' }
  | { kind: 'from-src'; table: TableRef }
  | { kind: 'from-rdns'; table?: TableRef }
  | { kind: 'from-auth'; table?: TableRef }
  | { kind: 'from-mail-from'; table: TableRef }
  | { kind: 'for-any' }
  | { kind: 'for-local' }
  | { kind: 'for-domain'; table: TableRef }
  | { kind: 'for-rcpt-to'; table: TableRef }
  | { kind: 'tag'; table: TableRef }
  | { kind: 'helo'; table: TableRef }
  | { kind: 'auth'; table?: TableRef }
  | { kind: 'mail-from'; table: TableRef }
  | { kind: 'rcpt-to'; table: TableRef }
  | { kind: 'tls' };

export interface MatchRule {
  criteria: { negate: boolean; criterion: MatchCriterion }[];
  /** Action name, or reject. */
  decision: { kind: 'action'; action: string } | { kind: 'reject' };
  where: Where;
}

export type FilterPhase =
  | 'connect'
  | 'helo'
  | 'ehlo'
  | 'starttls'
  | 'auth'
  | 'mail-from'
  | 'rcpt-to'
  | 'data'
  | 'data-line'
  | 'rset'
  | 'quit'
  | 'noop'
  | 'help'
  | 'wiz'
  | 'commit';

export type BuiltinCondition =
  | { kind: 'fcrdns' }
  | { kind: 'rdns'; table?: TableRef }
  | { kind: 'src'; table: TableRef }
  | { kind: 'helo'; table: TableRef }
  | { kind: 'auth'; table?: TableRef }
  | { kind: 'mail-from'; table: TableRef }
  | { kind: 'rcpt-to'; table: TableRef };

export type BuiltinDecision =
  | { kind: 'bypass' }
  | { kind: 'junk' }
  | { kind: 'reject'; message: string }
  | { kind: 'disconnect'; message: string }
  | { kind: 'rewrite'; value: string }
  | { kind: 'report'; message: string };

export interface ProcessSpec {
  command: string;
  user?: string;
  group?: string;
  chroot?: string;
}

export type FilterDecl =
  | {
      name: string;
      kind: 'builtin';
      phase: FilterPhase;
      conditions: { negate: boolean; condition: BuiltinCondition }[];
      decision: BuiltinDecision;
      where: Where;
    }
  | { name: string; kind: 'proc'; proc: string; where: Where }
  | { name: string; kind: 'proc-exec'; process: ProcessSpec; protocol?: string; where: Where }
  | { name: string; kind: 'chain'; filters: string[]; where: Where }
  /** tsmtpd addition: an in-process TypeScript/JavaScript filter module. */
  | { name: string; kind: 'module'; path: string; options: string[]; where: Where };

export interface ProcDecl extends ProcessSpec {
  name: string;
  where: Where;
}

export interface MdaWrapper {
  name: string;
  command: string;
  where: Where;
}

/** `mta limit [for domain D] [inet4|inet6] key N ...`: OpenSMTPD's per-destination limits. */
export interface MtaLimit {
  domain?: string;
  limits: Record<string, number>;
  where: Where;
}

/** A DNS server to send queries to (tsmtpd addition: `resolver "ADDR[:PORT]" ...`). */
export interface ResolverServer {
  address: string;
  port: number;
}

export interface Config {
  /** The file the config was read from (first file for includes). */
  file: string;
  macros: Record<string, string>;
  tables: Map<string, TableDecl>;
  pkis: Map<string, PkiDecl>;
  cas: Map<string, CaDecl>;
  listeners: Listener[];
  actions: Map<string, Action>;
  rules: MatchRule[];
  filters: Map<string, FilterDecl>;
  procs: Map<string, ProcDecl>;
  mdaWrappers: Map<string, MdaWrapper>;
  mdaLimits: Record<string, number>;
  queue: {
    compression: boolean;
    /**
     * `queue encryption [KEY|stdin|-]`: the 32-character key as written, or where the parent reads
     * it at start (daemon/queue-key.ts); `key` is filled then, and only the queue process gets it.
     */
    encryption?: { key?: string; from: 'config' | 'stdin' | 'prompt' };
    ttl: number;
    /** tsmtpd additions for `-B queue=postgres`: `queue url`, `queue node`, `queue lease` (seconds). */
    url?: string;
    node?: string;
    lease?: number;
  };
  smtp: {
    ciphers: string;
    maxMails: number;
    maxRcpt: number;
    maxMessageSize: number;
    subAddrDelim: string;
    /** tsmtpd additions: `smtp timeout DELAY` (idle time between commands, seconds) and session caps. */
    timeout: number;
    /** tsmtpd addition `smtp workers N`: smtp processes (0: one per core but one, at least one). */
    workers: number;
    maxSessions: number;
    maxSessionsPerAddress: number;
    /** tsmtpd additions, `smtp limit`: seconds for one command line, octets per second in a body. */
    maxCommandTime: number;
    minDataRate: number;
    /** tsmtpd addition `smtp ban auth-failures N in DELAY for DELAY` (seconds). */
    authBan?: { failures: number; window: number; duration: number };
  };
  mta: { port: number; limits: MtaLimit[] };
  schedulerLimits: Record<string, number>;
  bounce: { warnIntervals: number[] };
  srs?: { key: string; backupKey?: string; ttl: number };
  admd?: string;
  /** tsmtpd addition `stat listen on ADDR [port N]`: serve stats in Prometheus' format. */
  statListen?: { address: string; port: number; where: Where };
  /** Empty means: use the system's resolv.conf. */
  resolvers: ResolverServer[];
}

export { ConfigError } from '../errors.js';
