/**
 * When an envelope is tried again: OpenSMTPD's quadratic schedule, `ctime + base * step²`, the
 * step growing until the time is in the future; 400 s base for remote deliveries, 10 s for local
 * ones and bounces, which usually fail for reasons that clear quickly.
 */
import type { EnvelopeKind } from '../queue/envelope.js';

export function retryBase(kind: EnvelopeKind): number {
  return kind === 'mta' ? 400 : 10;
}

/** Seconds since the epoch of the next try after `tries` failures, strictly after `now`. */
export function nextTry(kind: EnvelopeKind, createdAt: number, tries: number, now: number): number {
  const base = retryBase(kind);
  let step = Math.max(1, tries);
  let at = createdAt + base * step * step;
  while (at <= now) {
    step++;
    at = createdAt + base * step * step;
  }
  return at;
}

/** The next delay-notice time still owed, or Infinity: each warn interval once, after a failure. */
export function nextWarn(createdAt: number, lastWarn: number, tries: number, intervals: number[]): number {
  if (tries === 0) return Infinity;
  const due = intervals.map((d) => createdAt + d).filter((t) => t > lastWarn);
  return due.length ? Math.min(...due) : Infinity;
}
