/**
 * Password guessing, slowed and remembered. Each failed AUTH is answered after a random pause
 * of up to a second, as OpenSMTPD's smtp_auth_failure_pause() does, so one session cannot try
 * passwords at wire speed and the answer's timing says nothing. With `smtp ban auth-failures N
 * in DELAY for DELAY` (a tsmtpd addition) an address that failed N times within the window is
 * turned away at connect, with 421, until the ban ends.
 *
 * The record lives in the smtp process: with several smtp workers each keeps its own, so an
 * address spread over W workers is banned after at most W×N failures.
 */
import { randomInt } from 'node:crypto';
import type { Clock } from '../clock.js';

export interface BanPolicy {
  failures: number;
  windowMs: number;
  banMs: number;
}

/** OpenSMTPD pauses arc4random_uniform(1000000) microseconds; a millisecond grain is enough. */
export function authFailurePauseMs(): number {
  return randomInt(1000);
}

/** Addresses remembered at once; the oldest go first, so a botnet cannot grow the map. */
const MAX_ADDRESSES = 100_000;

export class AuthFailures {
  /** Failure times within the window, per address; Map order is least recently failed first. */
  private readonly recent = new Map<string, number[]>();
  /** When each ban ends; bans have one length, so Map order is also expiry order. */
  private readonly bans = new Map<string, number>();

  constructor(
    private readonly policy: BanPolicy | null,
    private readonly clock: Clock,
  ) {}

  /** Count a failure from `address`; true when that failure earned the address a ban. */
  record(address: string): boolean {
    if (!this.policy) return false;
    const now = this.clock.now();
    const times = (this.recent.get(address) ?? []).filter((t) => t > now - this.policy!.windowMs);
    times.push(now);
    this.recent.delete(address);
    if (times.length >= this.policy.failures) {
      this.bans.delete(address);
      remember(this.bans, address, now + this.policy.banMs);
      return true;
    }
    remember(this.recent, address, times);
    return false;
  }

  banned(address: string): boolean {
    const until = this.bans.get(address);
    if (until === undefined) return false;
    if (until > this.clock.now()) return true;
    this.bans.delete(address);
    return false;
  }
}

function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.set(key, value);
  if (map.size > MAX_ADDRESSES) map.delete(map.keys().next().value!);
}
