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
  /** Backends that keep the schedule on disk let go of it when the role stops. */
  close?(): void;
}

/** An envelope a node claimed from a shared store: what it needs to reschedule it. */
export interface Claim {
  evpid: string;
  kind: EnvelopeKind;
  createdAt: number;
  tries: number;
  /** The node whose lease had run out when this one took it, if any: that node died or lost the database. */
  takenFrom: string | null;
}

/** One entry of a shared store for `show queue`: the SchedulerView fields and who holds it. */
export interface SharedEntry extends Omit<SchedulerEntry, 'msgid' | 'kind' | 'queueKey' | 'createdAt' | 'lastWarn'> {
  holder: string | null;
}

/**
 * A scheduler whose entries live in a store several nodes share (`-B scheduler=postgres`). The
 * store is the schedule — the queue writes each envelope's first due time with it — so there is
 * no insert and no batch: a node claims due envelopes under a lease that it renews while they are
 * out, then releases each with its next try, or the queue deletes it. A lease left to run out
 * (the node died) makes the envelope claimable again by any node. All times are seconds.
 */
export interface SharedSchedulerBackend {
  open(): Promise<void>;
  close(): Promise<void>;
  /** Wake `fn` whenever another node adds or reschedules mail. */
  onWake(fn: () => void): void;
  /** Leases this node held before it restarted: those deliveries were cut short, so they are due again now. */
  releaseAll(): Promise<number>;
  /** Lease up to `max` due envelopes of the kinds allowed, and every expired one found on the way; warnings owed are marked sent. */
  claim(now: number, max: number, kinds: ReadonlySet<EnvelopeKind>, warnIntervals: number[]): Promise<{ deliver: Claim[]; expire: Claim[]; warn: string[] }>;
  /** Extend this node's leases on `evpids`; returns those it still holds. */
  renew(now: number, evpids: string[]): Promise<string[]>;
  /** Give a lease back with the envelope's next try. */
  release(evpid: string, next: { tries: number; lastTry: number; nextTry: number }): Promise<void>;
  /** When something may next be claimable by this node: Infinity when nothing is queued. */
  nextWakeAt(now: number, kinds: ReadonlySet<EnvelopeKind>): Promise<number>;
  list(now: number, msgid?: string): Promise<SharedEntry[]>;
  /**
   * An admin command on an evpid, a msgid or `all`, for every node: schedule (due now), suspend,
   * resume; remove leases the free envelopes to this node and returns them for the queue to delete.
   */
  command(now: number, op: 'schedule' | 'remove' | 'suspend' | 'resume', target: string): Promise<string[]>;
  count(): Promise<number>;
}
