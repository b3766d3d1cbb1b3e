/**
 * The scheduler backend: which envelope is tried when. It never sees a message body, owns no
 * timer and reads no clock: the role passes `now` in and arms its one timer from `nextWakeAt`.
 */
import type { EnvelopeKind } from '../queue/envelope.js';

export type RunState = 'pending' | 'inflight';

export interface SchedulerEntry {
  evpid: string;
  msgid: string;
  kind: EnvelopeKind;
  /** Fairness key: action and destination domain. */
  queueKey: string;
  createdAt: number;
  expiresAt: number;
  tries: number;
  lastTry: number;
  lastWarn: number;
  /** Seconds since the epoch of the next attempt. */
  nextTry: number;
  state: RunState;
  suspended: boolean;
}

export interface Batch {
  /** Due for delivery, fair across queue keys. */
  deliver: string[];
  expire: string[];
  warn: string[];
  /** Seconds since the epoch of the next event, Infinity when there is none. */
  nextWakeAt: number;
}

export interface SchedulerBackend {
  insert(entry: SchedulerEntry): void;
  get(evpid: string): SchedulerEntry | undefined;
  /** Change an entry (after a try, a warn, an admin command); its place in time is recomputed. */
  update(entry: SchedulerEntry): void;
  remove(evpid: string): void;
  /** Entries of one message, or all. */
  list(msgid?: string): SchedulerEntry[];
  /**
   * What is due at `now`: deliveries of the kinds allowed, by message — a message's due
   * envelopes for one destination come out together, up to `perMessage` (OpenSMTPD's
   * max-evp-batch-size) — until `max` envelopes (a whole message may pass it); expiries and
   * warnings of pending envelopes. Returned entries are not marked; the role does that.
   */
  batch(now: number, max: number, kinds: ReadonlySet<EnvelopeKind>, warnIntervals: number[], perMessage?: number): Batch;
  readonly size: number;
}
