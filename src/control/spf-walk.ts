/**
 * `tsmtpctl spf walk`: for each domain read on stdin, the networks its SPF record authorizes,
 * following `include:` and `redirect=` and resolving `a` and `mx`, as smtpctl prints them (one
 * address or CIDR per line). Loops and the RFC 7208 limit of 10 lookups are honoured.
 */
import type { Resolver } from '../dns/resolver.js';

const MAX_LOOKUPS = 10;

export async function spfWalk(resolver: Resolver, domain: string): Promise<string[]> {
  const out = new Set<string>();
  const state = { lookups: 0, seen: new Set<string>() };
  await walk(resolver, domain.toLowerCase(), out, state);
  return [...out];
}

async function addresses(resolver: Resolver, name: string, cidr4: string, cidr6: string, out: Set<string>): Promise<void> {
  const [a, aaaa] = await Promise.all([resolver.a(name), resolver.aaaa(name)]);
  if (a.status === 'ok') for (const ip of a.records) out.add(cidr4 ? `${ip}/${cidr4}` : ip);
  if (aaaa.status === 'ok') for (const ip of aaaa.records) out.add(cidr6 ? `${ip}/${cidr6}` : ip);
}

async function walk(resolver: Resolver, domain: string, out: Set<string>, st: { lookups: number; seen: Set<string> }): Promise<void> {
  if (st.seen.has(domain) || st.lookups++ > MAX_LOOKUPS) return;
  st.seen.add(domain);
  const txt = await resolver.txt(domain);
  if (txt.status !== 'ok') return;
  const record = txt.records.find((r) => /^v=spf1(\s|$)/i.test(r));
  if (!record) return;
  for (const term of record.split(/\s+/).slice(1)) {
    const m = /^[+?~-]?([a-z0-9]+)(?:[:=]([^/]*))?(?:\/(\d+))?(?:\/\/(\d+))?$/i.exec(term);
    if (!m) continue;
    const [, mech, arg, c4 = '', c6 = ''] = m as unknown as [string, string, string | undefined, string?, string?];
    const name = (arg || domain).toLowerCase();
    switch (mech.toLowerCase()) {
      case 'ip4':
      case 'ip6':
        if (arg) out.add(term.replace(/^[+?~-]?ip[46]:/i, ''));
        break;
      case 'a':
        await addresses(resolver, name, c4, c6, out);
        break;
      case 'mx': {
        const mx = await resolver.mx(name);
        if (mx.status === 'ok') for (const r of mx.records) if (r.exchange) await addresses(resolver, r.exchange, c4, c6, out);
        break;
      }
      case 'include':
      case 'redirect':
        if (arg) await walk(resolver, name, out, st);
        break;
    }
  }
}
