/**
 * Password guessing, remembered per client address. With `smtp ban auth-failures N in DELAY for
 * DELAY` (a tsmtpd addition) an address that failed N times within the window is banned: the
 * lka, which hears of every failure from every smtp worker, tells the parent, which turns the
 * address away at connect with 421 until the ban ends (src/smtp/admission.ts).
 */
import type { Clock } from '../clock.js';

export interface BanPolicy {
  failures: number;
  windowMs: number;
  banMs: number;
}

/** Addresses remembered at once; the least recently failed go first, so a botnet cannot grow the map. */
export const MAX_ADDRESSES = 100_000;

export class AuthFailures {
  /** Failure times within the window, per address; Map order is least recently failed first. */
  private readonly recent = new Map<string, number[]>();

  constructor(
    private readonly policy: BanPolicy | null,
    private readonly clock: Clock,
  ) {}

  /** Count a failure from `address`; the ban's length in ms when that failure earned one, else null. */
  record(address: string): number | null {
    if (!this.policy) return null;
    const now = this.clock.now();
    const times = (this.recent.get(address) ?? []).filter((t) => t > now - this.policy!.windowMs);
    times.push(now);
    this.recent.delete(address);
    if (times.length >= this.policy.failures) return this.policy.banMs;
    remember(this.recent, address, times);
    return null;
  }
}

export function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.set(key, value);
  if (map.size > MAX_ADDRESSES) map.delete(map.keys().next().value!);
}
