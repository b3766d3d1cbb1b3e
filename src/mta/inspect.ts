/**
 * What the mta can tell an admin (`tsmtpctl show hosts|relays|routes|hoststats`): the hosts it
 * talked to, its relays' connectors, backed-off routes, and the last outcome per domain over the
 * last four hours, in lines shaped like smtpctl's.
 */
import type { Res } from '../bus/messages.js';
import type { Delivered, RelayPool } from './relay.js';

/** `show hoststats` keeps a domain this long after its last delivery, as OpenSMTPD does. */
const HOSTSTAT_TTL_MS = 4 * 3600_000;
const MAX_TRACKED = 10_000;

export class MtaInspector {
  private readonly hosts = new Map<string, { name: string; deliveries: number; last: number }>();
  private readonly hoststats = new Map<string, { at: number; status: string }>();

  constructor(private readonly pool: RelayPool, private readonly now: () => number) {}

  /** Record one delivery's outcome. */
  record(domain: string, outcome: Delivered): void {
    const now = this.now();
    if (outcome.via) {
      const h = this.hosts.get(outcome.via.address) ?? { name: outcome.via.host, deliveries: 0, last: now };
      h.deliveries++;
      h.last = now;
      this.bounded(this.hosts).set(outcome.via.address, h);
    }
    const r = outcome.result;
    const status = r.result === 'ok' ? `250 ${r.detail}` : `${r.enhanced} ${r.detail}`;
    this.bounded(this.hoststats).set(domain, { at: now, status: status.replace(/[|\r\n]/g, ' ') });
  }

  private bounded<T>(m: Map<string, T>): Map<string, T> {
    if (m.size >= MAX_TRACKED) m.delete(m.keys().next().value!);
    return m;
  }

  show(what: 'hosts' | 'relays' | 'routes' | 'hoststats'): Res<'control.mta.show'> {
    const now = this.now();
    switch (what) {
      case 'hosts': {
        const items = [...this.hosts].map(([address, h]) => ({ address, name: h.name, deliveries: h.deliveries, lastconn: Math.round((now - h.last) / 1000) }));
        return { items, lines: items.map((h) => `${h.address} (${h.name}) deliveries=${h.deliveries} lastconn=${h.lastconn}s`) };
      }
      case 'relays': {
        const items = this.pool.relays();
        return { items, lines: items.map((r) => `${r.id} relay=${r.relay} connections=${r.connections} idle=${r.idle} opened=${r.opened} queued=${r.queued}`) };
      }
      case 'routes': {
        const items = this.pool.routes.snapshot().map((r) => ({
          route: r.key, penalty: r.penalty, disabled: r.disabledUntil > now ? Math.round((r.disabledUntil - now) / 1000) : 0,
        }));
        return { items, lines: items.map((r) => `${r.route} penalty=${r.penalty}${r.disabled ? ` D until=+${r.disabled}s` : ''}`) };
      }
      case 'hoststats': {
        const items = [...this.hoststats]
          .filter(([, s]) => now - s.at < HOSTSTAT_TTL_MS)
          .map(([domain, s]) => ({ domain, timestamp: Math.floor(s.at / 1000), status: s.status }));
        return { items, lines: items.map((s) => `${s.domain}|${s.timestamp}|${s.status}`) };
      }
    }
  }
}
