/**
 * Where a domain's mail goes: its MX records by preference (random among equals, so load spreads
 * as RFC 5321 asks), Null MX, the implicit MX of a domain without one, and each host's addresses.
 */
import { isIP } from 'node:net';
import type { DeliveryResult } from '../bus/messages.js';
import type { MxRecord, Resolver } from '../dns/resolver.js';

export interface MxHost {
  name: string;
  preference: number;
  addresses: string[];
}

export type MxPlan = { ok: true; hosts: MxHost[] } | { ok: false; failure: DeliveryResult };

const fail = (result: 'tempfail' | 'permfail', enhanced: string, detail: string): MxPlan => ({ ok: false, failure: { result, enhanced, detail } });

/** Ascending preference; equal preferences shuffled (Fisher-Yates with the given source). */
export function orderMx(records: MxRecord[], random: () => number = Math.random): MxRecord[] {
  const groups = new Map<number, MxRecord[]>();
  for (const r of records) groups.set(r.preference, [...(groups.get(r.preference) ?? []), r]);
  return [...groups.keys()].sort((a, b) => a - b).flatMap((p) => shuffle(groups.get(p)!, random));
}

function shuffle<T>(xs: T[], random: () => number): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** RFC 7505: a single MX `0 .` says the domain takes no mail at all. */
export function isNullMx(r: MxRecord): boolean {
  return r.exchange === '' || r.exchange === '.';
}

export async function addressesOf(resolver: Resolver, name: string): Promise<string[] | 'tempfail'> {
  const literal = /^\[(.*)\]$/.exec(name)?.[1] ?? name;
  if (isIP(literal.replace(/^ipv6:/i, ''))) return [literal.replace(/^ipv6:/i, '')];
  const [a, aaaa] = await Promise.all([resolver.a(name), resolver.aaaa(name)]);
  const found = [...(a.status === 'ok' ? a.records : []), ...(aaaa.status === 'ok' ? aaaa.records : [])];
  if (found.length === 0 && (a.status === 'tempfail' || aaaa.status === 'tempfail')) return 'tempfail';
  return found;
}

/**
 * A backup MX relays only to MXs better than itself: sending to an equal or worse one would bounce
 * the mail between backups. Not listed at all: every MX is better.
 */
export function forBackup(records: MxRecord[], self: string): MxRecord[] {
  const mine = records.filter((r) => r.exchange.toLowerCase().replace(/\.$/, '') === self.toLowerCase());
  if (mine.length === 0) return records;
  const own = Math.min(...mine.map((r) => r.preference));
  return records.filter((r) => r.preference < own);
}

/** The ordered hosts for a domain, or the failure every envelope for it gets. */
export async function resolveMx(resolver: Resolver, domain: string, random: () => number = Math.random, backupOf?: string): Promise<MxPlan> {
  if (/^\[.*\]$/.test(domain)) return resolveHost(resolver, domain);
  const mx = await resolver.mx(domain);
  if (mx.status === 'nxdomain') return fail('permfail', '5.1.2', 'Domain does not exist');
  if (mx.status === 'tempfail') return fail('tempfail', '4.4.3', 'Temporary failure in MX lookup');
  // no MX: the domain itself is its own MX (RFC 5321 5.1)
  if (mx.status !== 'ok' || mx.records.length === 0) return resolveHost(resolver, domain);
  const real = mx.records.filter((r) => !isNullMx(r));
  if (real.length === 0) return fail('permfail', '5.1.10', 'Domain does not accept mail (null MX)');
  const usable = backupOf ? forBackup(real, backupOf) : real;
  if (usable.length === 0) return fail('tempfail', '4.4.4', 'No MX better than this backup MX');
  const hosts: MxHost[] = [];
  let temp = false;
  for (const r of orderMx(usable, random)) {
    const addrs = await addressesOf(resolver, r.exchange);
    if (addrs === 'tempfail') temp = true;
    else if (addrs.length) hosts.push({ name: r.exchange, preference: r.preference, addresses: addrs });
  }
  if (hosts.length) return { ok: true, hosts };
  return fail('tempfail', '4.4.4', temp ? 'Temporary failure in host lookup' : 'No MX found for domain');
}

/** A relay host or an address literal: one host at preference 0. */
export async function resolveHost(resolver: Resolver, name: string): Promise<MxPlan> {
  const addrs = await addressesOf(resolver, name);
  if (addrs === 'tempfail') return fail('tempfail', '4.4.3', 'Temporary failure in host lookup');
  if (addrs.length === 0) return fail('tempfail', '4.4.4', 'Host not found');
  return { ok: true, hosts: [{ name: name.replace(/^\[(.*)\]$/, '$1'), preference: 0, addresses: addrs }] };
}
