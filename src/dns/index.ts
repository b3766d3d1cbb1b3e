/**
 * The lka's resolver: local answers first (loopback, /etc/hosts), then the DNS servers of the
 * config's `resolver` lines or of /etc/resolv.conf through Node's own asynchronous resolver
 * (c-ares), with a cache that keeps answers for their TTL and negative answers for a short while.
 */
import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';
import type { Config } from '../config/types.js';
import { isLoopbackAddress, loadHosts, type HostsFile } from './hosts.js';
import type { Answer, MxRecord, Resolver } from './resolver.js';

export type { Answer, MxRecord, Resolver } from './resolver.js';

/** c-ares reports no TTL for MX, TXT and PTR: such answers are kept this long. */
const DEFAULT_TTL = 300;
const NEGATIVE_TTL = 60;
const MAX_TTL = 86_400;
const MAX_ENTRIES = 10_000;

interface Options {
  hosts?: HostsFile;
  timeoutMs?: number;
  tries?: number;
}

export function createResolver(config: Pick<Config, 'resolvers'>, clock: Clock = systemClock, o: Options = {}): Resolver {
  // c-ares (1.34 in Node 20) sizes each try from the server's past answers, down to a fraction of a
  // second, and only caps it at `timeout`: after many quick answers a DNSBL zone that takes 2 s
  // timed out twice within a second and counted as not listing the client. Five tries let the
  // wait grow back towards resolv.conf's 5 s (RES_TIMEOUT), and a late answer to an earlier try
  // still counts while the query is pending.
  const r = new dns.Resolver({ timeout: o.timeoutMs ?? 5000, tries: o.tries ?? 5 });
  if (config.resolvers.length) r.setServers(config.resolvers.map((s) => (s.address.includes(':') ? `[${s.address}]:${s.port}` : `${s.address}:${s.port}`)));
  return new CachingResolver(r, o.hosts ?? loadHosts(), clock);
}

function classify(err: unknown): Answer<never> {
  const code = (err as { code?: string }).code;
  if (code === 'ENOTFOUND') return { status: 'nxdomain' };
  if (code === 'ENODATA') return { status: 'nodata' };
  return { status: 'tempfail', reason: code ?? (err as Error).message };
}

class CachingResolver implements Resolver {
  private readonly cache = new Map<string, { expires: number; answer: Answer<unknown> }>();
  private readonly inflight = new Map<string, Promise<Answer<unknown>>>();

  constructor(private readonly r: dns.Resolver, private readonly hosts: HostsFile, private readonly clock: Clock) {}

  /** One query per key at a time; answers kept for their TTL, temporary failures not at all. */
  private cached<T>(key: string, query: () => Promise<Answer<T>>): Promise<Answer<T>> {
    const hit = this.cache.get(key);
    if (hit && hit.expires > this.clock.now()) return Promise.resolve(hit.answer as Answer<T>);
    const pending = this.inflight.get(key);
    if (pending) return pending as Promise<Answer<T>>;
    const p = query().catch(classify).then((answer) => {
      this.inflight.delete(key);
      const ttl = answer.status === 'ok' ? Math.min(answer.ttl, MAX_TTL) : answer.status === 'tempfail' ? 0 : NEGATIVE_TTL;
      if (ttl > 0) {
        if (this.cache.size >= MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
        this.cache.set(key, { expires: this.clock.now() + ttl * 1000, answer });
      }
      return answer;
    });
    this.inflight.set(key, p as Promise<Answer<unknown>>);
    return p;
  }

  private local(name: string, family: 4 | 6): Answer<string> | null {
    const n = name.toLowerCase().replace(/\.$/, '');
    if (isIP(n)) return isIP(n) === family ? { status: 'ok', records: [n], ttl: MAX_TTL } : { status: 'nodata' };
    const listed = this.hosts.forward.get(n)?.filter((a) => isIP(a) === family);
    if (listed?.length) return { status: 'ok', records: listed, ttl: MAX_TTL };
    if (n === 'localhost') return { status: 'ok', records: [family === 4 ? '127.0.0.1' : '::1'], ttl: MAX_TTL };
    return this.hosts.forward.has(n) ? { status: 'nodata' } : null;
  }

  a(name: string): Promise<Answer<string>> {
    const local = this.local(name, 4);
    if (local) return Promise.resolve(local);
    return this.cached(`a:${name.toLowerCase()}`, async () => {
      const rs = await this.r.resolve4(name, { ttl: true });
      return { status: 'ok', records: rs.map((x) => x.address), ttl: Math.min(...rs.map((x) => x.ttl)) };
    });
  }

  aaaa(name: string): Promise<Answer<string>> {
    const local = this.local(name, 6);
    if (local) return Promise.resolve(local);
    return this.cached(`aaaa:${name.toLowerCase()}`, async () => {
      const rs = await this.r.resolve6(name, { ttl: true });
      return { status: 'ok', records: rs.map((x) => x.address), ttl: Math.min(...rs.map((x) => x.ttl)) };
    });
  }

  mx(name: string): Promise<Answer<MxRecord>> {
    return this.cached(`mx:${name.toLowerCase()}`, async () => {
      const rs = await this.r.resolveMx(name);
      return { status: 'ok', records: rs.map((x) => ({ preference: x.priority, exchange: x.exchange.toLowerCase() })), ttl: DEFAULT_TTL };
    });
  }

  txt(name: string): Promise<Answer<string>> {
    return this.cached(`txt:${name.toLowerCase()}`, async () => {
      const rs = await this.r.resolveTxt(name);
      return { status: 'ok', records: rs.map((chunks) => chunks.join('')), ttl: DEFAULT_TTL };
    });
  }

  ptr(address: string): Promise<Answer<string>> {
    const a = address.replace(/^::ffff:/i, '');
    const listed = this.hosts.reverse.get(a);
    if (listed) return Promise.resolve({ status: 'ok', records: [listed], ttl: MAX_TTL });
    if (isLoopbackAddress(a)) return Promise.resolve({ status: 'ok', records: ['localhost'], ttl: MAX_TTL });
    if (!isIP(a)) return Promise.resolve({ status: 'nxdomain' });
    return this.cached(`ptr:${a}`, async () => {
      const rs = await this.r.reverse(a);
      return { status: 'ok', records: rs.map((x) => x.toLowerCase()), ttl: DEFAULT_TTL };
    });
  }

  close(): void {
    this.r.cancel();
  }
}

/** Forward-confirmed reverse DNS: a PTR name whose A/AAAA records include the address. */
export async function fcrdnsCheck(resolver: Resolver, address: string): Promise<{ rdns?: string; fcrdns: 'pass' | 'fail' | 'error' }> {
  const ptr = await resolver.ptr(address);
  if (ptr.status === 'tempfail') return { fcrdns: 'error' };
  if (ptr.status !== 'ok' || ptr.records.length === 0) return { fcrdns: 'fail' };
  const name = ptr.records[0]!;
  const forward = isIP(address) === 6 ? await resolver.aaaa(name) : await resolver.a(name);
  if (forward.status === 'tempfail') return { rdns: name, fcrdns: 'error' };
  const confirmed = forward.status === 'ok' && forward.records.includes(address.replace(/^::ffff:/i, ''));
  return { rdns: name, fcrdns: confirmed ? 'pass' : 'fail' };
}
