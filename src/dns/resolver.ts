/**
 * The asynchronous resolver the lka owns: the contract its users (ruleset, filters, mta) code
 * against. Answers carry their TTL so callers and the cache can honour it.
 */

export interface MxRecord {
  preference: number;
  exchange: string;
}

/** A lookup outcome: records, a definite "no such name / no data", or a temporary failure. */
export type Answer<T> =
  | { status: 'ok'; records: T[]; ttl: number }
  | { status: 'nxdomain' | 'nodata' }
  | { status: 'tempfail'; reason: string };

export interface Resolver {
  a(name: string): Promise<Answer<string>>;
  aaaa(name: string): Promise<Answer<string>>;
  mx(name: string): Promise<Answer<MxRecord>>;
  txt(name: string): Promise<Answer<string>>;
  /** Reverse lookup of an IPv4 or IPv6 address. */
  ptr(address: string): Promise<Answer<string>>;
  close(): void;
}
