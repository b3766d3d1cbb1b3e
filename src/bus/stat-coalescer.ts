/**
 * Counters bound for the stat role in another process, summed before they leave: a busy daemon
 * sends each counter a few times a second instead of once per event (a message accepted and
 * relayed moves about seventeen of them). Gauges keep their last value. What a flush sends is the
 * same notifications as before, so the stat role does not know the difference; `show stats` lags
 * by at most FLUSH_MS. Each flush wakes the stat's process and the sender's: at 10 ms, a daemon
 * taking one message at a time woke them about four times per message.
 */
import type { Req, RoleName } from './messages.js';

export const FLUSH_MS = 100;

type StatType = 'stat.increment' | 'stat.decrement' | 'stat.set';
export type StatNotice = { type: StatType; from: RoleName; req: Req<StatType> };

export function isStatType(type: string): type is StatType {
  return type === 'stat.increment' || type === 'stat.decrement' || type === 'stat.set';
}

export class StatCoalescer {
  private pending = new Map<string, StatNotice>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly send: (n: StatNotice) => void) {}

  add(n: StatNotice): void {
    const { key, labels } = n.req;
    const id = `${n.type}\0${n.from}\0${key}\0${labels ? JSON.stringify(labels) : ''}`;
    const seen = this.pending.get(id);
    if (!seen) this.pending.set(id, { ...n, req: { ...n.req } });
    else if (n.type === 'stat.set') seen.req = { ...n.req };
    else {
      const r = seen.req as Req<'stat.increment'>;
      r.by = (r.by ?? 1) + ((n.req as Req<'stat.increment'>).by ?? 1);
    }
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), FLUSH_MS);
      // a process with only counters left to send may exit without them
      this.timer.unref();
    }
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const out = this.pending;
    this.pending = new Map();
    for (const n of out.values()) this.send(n);
  }
}
