/**
 * The DNSBL filter, built on the TypeScript filter API as its reference user:
 *
 *   filter "dnsbl" module "dnsbl" "zone=zen.example:3:127.0.0.2,127.0.0.3" "zone=bl.example:1" \
 *       "threshold=3" "phase=rcpt-to" "allow=<dnsbl-allow>" "reply=554 5.7.1 Listed in %zones"
 *
 * Every zone is asked at connect, in parallel, through the daemon's resolver (cached, shared
 * between sessions). The client's score is the sum of the weights of the zones that list it;
 * at or above the threshold it is refused (or marked junk with `action=junk`) at the configured
 * phase: `connect` waits for the answers before the banner, `rcpt-to` lets the dialogue run
 * while they come and decides at the first RCPT. A zone that fails to answer counts as not
 * listing the client (fail open), and is counted so it shows.
 *
 * Options: zone=NAME[:WEIGHT[:CODES]] (CODES: comma-separated 127.x.y.z answers that count;
 * default any 127.0.0.0/8 answer except 127.255.255.0/24, which zones use for errors),
 * threshold=N (default 1), phase=connect|rcpt-to (default connect), allow=TABLE (netaddr),
 * action=reject|junk (default reject), reply=TEXT (%zones and %ip are replaced).
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { Decision, FilterFactory, FilterServices, PhaseEvent } from '../api.js';

interface Zone {
  name: string;
  weight: number;
  codes: Set<string> | null;
}

export interface DnsblOptions {
  zones: Zone[];
  threshold: number;
  phase: 'connect' | 'rcpt-to';
  allow?: string;
  action: 'reject' | 'junk';
  reply: string;
}

export function parseOptions(words: string[]): DnsblOptions {
  const o: DnsblOptions = { zones: [], threshold: 1, phase: 'connect', action: 'reject', reply: '554 5.7.1 Service unavailable; client [%ip] listed by %zones' };
  for (const word of words) {
    const eq = word.indexOf('=');
    const key = eq < 0 ? word : word.slice(0, eq);
    const value = eq < 0 ? '' : word.slice(eq + 1);
    switch (key) {
      case 'zone': {
        const [name = '', weight = '1', codes] = value.split(':');
        if (!/^[a-z0-9.-]+$/i.test(name)) throw new Error(`dnsbl: bad zone name: ${name}`);
        const w = Number(weight);
        if (!Number.isInteger(w) || w < 1) throw new Error(`dnsbl: bad weight for ${name}: ${weight}`);
        const list = codes ? codes.split(',') : null;
        if (list?.some((c) => !isIPv4(c) || !c.startsWith('127.'))) throw new Error(`dnsbl: return codes of ${name} must be 127.x.y.z addresses`);
        o.zones.push({ name: name.toLowerCase().replace(/\.$/, ''), weight: w, codes: list && new Set(list) });
        break;
      }
      case 'threshold':
        o.threshold = Number(value);
        if (!Number.isInteger(o.threshold) || o.threshold < 1) throw new Error(`dnsbl: bad threshold: ${value}`);
        break;
      case 'phase':
        if (value !== 'connect' && value !== 'rcpt-to') throw new Error(`dnsbl: phase must be connect or rcpt-to, not ${value}`);
        o.phase = value;
        break;
      case 'allow':
        o.allow = value.replace(/^<(.*)>$/, '$1');
        break;
      case 'action':
        if (value !== 'reject' && value !== 'junk') throw new Error(`dnsbl: action must be reject or junk, not ${value}`);
        o.action = value;
        break;
      case 'reply':
        if (!/^[45]\d\d /.test(value)) throw new Error('dnsbl: reply must start with a 4xx or 5xx code');
        o.reply = value;
        break;
      default:
        throw new Error(`dnsbl: unknown option: ${key}`);
    }
  }
  if (!o.zones.length) throw new Error('dnsbl: at least one zone= is needed');
  return o;
}

/** The name to ask: reversed octets for IPv4, reversed nibbles of the full address for IPv6. */
export function reverseName(address: string, zone: string): string | null {
  if (isIPv4(address)) return `${address.split('.').reverse().join('.')}.${zone}`;
  if (!isIPv6(address)) return null;
  const [head = '', tail = ''] = address.split('::');
  const groups = (s: string) => (s ? s.split(':') : []);
  const h = groups(head);
  const t = address.includes('::') ? groups(tail) : [];
  const all = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  if (all.length !== 8 || all.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) return null;
  const nibbles = all.map((g) => g.toLowerCase().padStart(4, '0')).join('').split('').reverse();
  return `${nibbles.join('.')}.${zone}`;
}

function counts(zone: Zone, answer: string): boolean {
  if (zone.codes) return zone.codes.has(answer);
  return answer.startsWith('127.') && !answer.startsWith('127.255.255.');
}

type Verdict = { score: number; listedBy: string[] };

const create: FilterFactory = (words, services) => {
  const opts = parseOptions(words);
  /** Per session, the verdict being computed since connect. */
  const pending = new Map<string, Promise<Verdict>>();

  async function lookup(address: string): Promise<Verdict> {
    const allowTable = opts.allow ? services.table(opts.allow) : undefined;
    if (opts.allow && !allowTable) throw new Error(`dnsbl: no table named ${opts.allow}`);
    if (allowTable && (await allowTable.match('netaddr', address))) return { score: 0, listedBy: [] };
    const answers = await Promise.all(opts.zones.map(async (zone) => ({ zone, listed: await listedIn(services, zone, address) })));
    const listedBy = answers.filter((a) => a.listed).map((a) => a.zone);
    return { score: listedBy.reduce((n, z) => n + z.weight, 0), listedBy: listedBy.map((z) => z.name) };
  }

  async function decide(ev: PhaseEvent): Promise<Decision> {
    // kept until the session ends: every RCPT of a listed client is refused, not just the first
    const v = await (pending.get(ev.session.id) ?? lookup(ev.session.clientAddress));
    if (v.score < opts.threshold) return { decision: 'proceed' };
    services.increment('refused', { action: opts.action });
    services.log(ev.session.id, { client: ev.session.clientAddress, score: v.score, zones: v.listedBy.join(','), action: opts.action });
    if (opts.action === 'junk') return { decision: 'junk' };
    return { decision: 'reject', reply: opts.reply.replaceAll('%zones', v.listedBy.join(', ')).replaceAll('%ip', ev.session.clientAddress) };
  }

  return {
    phases: {
      async connect(ev) {
        // local clients (the enqueue socket) have no address to look up
        if (ev.session.clientAddress === 'local') return { decision: 'proceed' };
        const v = lookup(ev.session.clientAddress);
        // a rejected promise must not go unhandled while it waits for RCPT
        v.catch(() => undefined);
        pending.set(ev.session.id, v);
        return opts.phase === 'connect' ? decide(ev) : { decision: 'proceed' };
      },
      async 'rcpt-to'(ev) {
        if (opts.phase !== 'rcpt-to' || !pending.has(ev.session.id)) return { decision: 'proceed' };
        return decide(ev);
      },
    },
    reports: {
      'link-disconnect': (ev) => void pending.delete(ev.session),
    },
  };
};

async function listedIn(services: FilterServices, zone: Zone, address: string): Promise<boolean> {
  const name = reverseName(address, zone.name);
  if (!name) return false;
  const a = await services.dns.a(name);
  services.increment('lookup', { zone: zone.name, status: a.status });
  if (a.status !== 'ok') return false;
  const listed = a.records.some((r) => counts(zone, r));
  if (listed) services.increment('listed', { zone: zone.name });
  return listed;
}

export default create;
