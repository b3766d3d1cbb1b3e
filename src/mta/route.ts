/**
 * Route state: a route (source, remote address and port) that failed to connect is disabled for
 * `15 * penalty²` seconds, capped at an hour, as OpenSMTPD does; a success forgives one step.
 */

const MAX_BACKOFF_S = 3600;

interface RouteState {
  penalty: number;
  disabledUntil: number;
}

export function routeKey(address: string, port: number, source?: string): string {
  return `${source ?? 'any'}>${address}:${port}`;
}

export function backoffSeconds(penalty: number): number {
  return Math.min(15 * penalty * penalty, MAX_BACKOFF_S);
}

export class RouteTable {
  private readonly routes = new Map<string, RouteState>();

  /** Is this route backed off at time `now` (ms)? */
  disabled(key: string, now: number): boolean {
    const r = this.routes.get(key);
    return r !== undefined && r.disabledUntil > now;
  }

  /** A connect failure: one more penalty step; returns until when (ms) the route rests. */
  failed(key: string, now: number): number {
    const r = this.routes.get(key) ?? { penalty: 0, disabledUntil: 0 };
    r.penalty = Math.min(r.penalty + 1, 100);
    r.disabledUntil = now + backoffSeconds(r.penalty) * 1000;
    this.routes.set(key, r);
    return r.disabledUntil;
  }

  succeeded(key: string): void {
    const r = this.routes.get(key);
    if (!r) return;
    r.penalty -= 1;
    r.disabledUntil = 0;
    if (r.penalty <= 0) this.routes.delete(key);
  }

  /** `tsmtpctl resume route`: forget a route's failures now. */
  resume(key: string): boolean {
    return this.routes.delete(key);
  }

  /** Every route backed off at `now` is enabled again, its penalty forgotten (mta.c, IMSG_CTL_RESUME_ROUTE); returns how many. */
  resumeAll(now: number): number {
    let n = 0;
    for (const [key, r] of this.routes) {
      if (r.disabledUntil > now && this.routes.delete(key)) n++;
    }
    return n;
  }

  /** For `show routes`-style inspection and tests. */
  snapshot(): { key: string; penalty: number; disabledUntil: number }[] {
    return [...this.routes].map(([key, r]) => ({ key, ...r }));
  }
}
