/**
 * Whether a new connection is served: not while smtp is paused, not beyond the session caps
 * overall and per client address. It lives where connections are accepted — the parent, which
 * sees every worker's sessions, or the smtp role itself when all roles share one process.
 */
import type { Req, Res } from '../bus/messages.js';
import { systemClock, type Clock } from '../clock.js';
import { remember } from '../lka/auth-failures.js';
import { log } from '../log.js';
import type { SessionLimits } from './limits.js';
import { REPLIES, type Reply } from './reply.js';

export function isLoopback(address: string): boolean {
  return address === 'local' || address === '::1' || /^(?:::ffff:)?127\./.test(address);
}

export class Admission {
  private open = 0;
  private readonly perAddress = new Map<string, number>();
  /** When each ban ends; bans have one length, so Map order is also expiry order. */
  private readonly bans = new Map<string, number>();
  paused = false;

  constructor(
    private readonly limits: Pick<SessionLimits, 'maxSessions' | 'maxSessionsPerAddress' | 'exemptLoopback'>,
    private readonly clock: Clock = systemClock,
  ) {}

  /** `smtp ban`: the lka saw too many AUTH failures from `address`; refuse it for `ms`. */
  ban(address: string, ms: number): void {
    const key = address.replace(/^::ffff:/, '');
    this.bans.delete(key);
    remember(this.bans, key, this.clock.now() + ms);
  }

  private banned(address: string): boolean {
    const key = address.replace(/^::ffff:/, '');
    const until = this.bans.get(key);
    if (until === undefined) return false;
    if (until > this.clock.now()) return true;
    this.bans.delete(key);
    return false;
  }

  /** The bans in force and the milliseconds each has left (for a worker started after them). */
  bansLeft(): [string, number][] {
    const now = this.clock.now();
    return [...this.bans].filter(([, until]) => until > now).map(([address, until]) => [address, until - now]);
  }

  get sessions(): number {
    return this.open;
  }

  /** The 421 of a paused smtp or a banned address, which no count changes. */
  barred(address: string): Reply | null {
    if (this.paused) return REPLIES.paused;
    if (!this.banned(address)) return null;
    log('info', null, 'smtp', 'limit', { address, reason: 'banned' });
    return REPLIES.banned;
  }

  /** Whether `address` is spared the per-address cap. */
  exempt(address: string): boolean {
    // loopback clients are exempt from the per-address cap, as Postfix exempts $mynetworks:
    // local submission and benchmarks come from there
    return this.limits.exemptLoopback && isLoopback(address);
  }

  /**
   * Set aside up to `n` sessions of the overall cap for a worker to admit exempt clients
   * itself (worker-admission.ts); returns how many. They count as open until given back.
   */
  reserve(n: number): number {
    const k = this.paused ? 0 : Math.max(0, Math.min(n, this.limits.maxSessions - this.open));
    this.open += k;
    return k;
  }

  unreserve(n: number): void {
    this.open = Math.max(0, this.open - n);
  }

  /** Count the connection in and return null, or return the 421 it gets instead of a session. */
  admit(address: string): Reply | null {
    const barred = this.barred(address);
    if (barred) return barred;
    const count = this.perAddress.get(address) ?? 0;
    const capped = count >= this.limits.maxSessionsPerAddress && !this.exempt(address);
    if (this.open >= this.limits.maxSessions || capped) {
      log('warn', null, 'smtp', 'limit', { address, sessions: this.open });
      return REPLIES.tooManySessions;
    }
    this.perAddress.set(address, count + 1);
    this.open++;
    return null;
  }

  /** A session admitted earlier has ended. */
  release(address: string): void {
    const n = (this.perAddress.get(address) ?? 1) - 1;
    if (n > 0) this.perAddress.set(address, n);
    else this.perAddress.delete(address);
    this.open = Math.max(0, this.open - 1);
  }

  /** `tsmtpctl pause smtp` / `resume smtp` (`show status` only asks); `changed` says whether the state moved. */
  control(req: Req<'control.smtp.pause'>): Res<'control.smtp.pause'> {
    if (!('paused' in req)) return { paused: this.paused, changed: false };
    const paused = req.paused;
    const changed = this.paused !== paused;
    this.paused = paused;
    if (changed) log('info', null, 'smtp', 'control', { smtp: paused ? 'paused' : 'resumed' });
    return { paused, changed };
  }
}
