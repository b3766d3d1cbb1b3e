/**
 * Who may open a session on an smtp worker that accepts for itself (daemon/shared-listeners.ts).
 * The parent keeps the count over every worker (admission.ts); asking it costs a round trip
 * before the banner. A client exempt from the per-address cap (loopback) only needs a place
 * under the overall cap, so the worker holds a few such places leased from the parent and
 * admits those clients at once; it asks for more before it runs out and gives back what it does
 * not need. Every other client is counted in by the parent, exactly. A pause or a ban reaches
 * the workers too, so a leased place never admits what the parent would refuse.
 */
import { systemClock, type Clock } from '../clock.js';
import { Admission } from './admission.js';
import type { SessionLimits } from './limits.js';
import type { Reply } from './reply.js';

/** The parent's answer to a connection: its 421, or leave to serve it and how to count it out. */
export type Admitted = { reply: Reply } | { release(): void };

/** Places asked for at a time, the level that asks for more, and the level above which they go back. */
const LEASE = 16;
const LOW = 4;
const HIGH = 2 * LEASE;
/** After the parent had none to spare, the worker asks again only this much later. */
const RETRY_MS = 1000;
/** Below this overall cap per worker, places are not leased: every session is counted by the parent. */
const MIN_SESSIONS_PER_WORKER = 4 * HIGH;

/** Whether the parent leases places at all: not when a few held by each worker would matter. */
export function leases(maxSessions: number, workers: number): boolean {
  return maxSessions >= MIN_SESSIONS_PER_WORKER * workers;
}

export interface ParentLink {
  /** Ask the parent to count a connection in; `closed(conn)` counts it out. */
  admit(address: string): Promise<{ conn?: number; reply?: Reply }>;
  closed(conn: number): void;
  lease(n: number): void;
  unlease(n: number): void;
}

export class WorkerAdmission {
  /** Paused state and bans, as the parent last said; no counts are kept here. */
  private readonly gate: Admission;
  private places = 0;
  private asking = false;
  private retryAt = 0;

  constructor(
    limits: Pick<SessionLimits, 'maxSessions' | 'maxSessionsPerAddress' | 'exemptLoopback'>,
    private readonly parent: ParentLink,
    private readonly clock: Clock = systemClock,
  ) {
    this.gate = new Admission(limits, clock);
  }

  /** A leased place at once when there is one, else the parent's answer. */
  admit(address: string): Admitted | Promise<Admitted> {
    const barred = this.gate.barred(address);
    if (barred) return { reply: barred };
    if (this.gate.exempt(address)) {
      this.topUp();
      if (this.places > 0) {
        this.places--;
        return { release: () => this.giveBack() };
      }
    }
    return this.parent.admit(address).then((a) => (a.reply ? { reply: a.reply } : { release: () => this.parent.closed(a.conn!) }));
  }

  /** The parent granted `n` places (0: none to spare now, or it leases none: leases()). */
  leased(n: number): void {
    this.asking = false;
    this.places += n;
    if (n === 0) this.retryAt = this.clock.now() + RETRY_MS;
  }

  /** The parent paused or resumed smtp: leased places admit nobody while it is paused. */
  pause(paused: boolean): void {
    this.gate.paused = paused;
  }

  ban(address: string, ms: number): void {
    this.gate.ban(address, ms);
  }

  private topUp(): void {
    if (this.asking || this.places >= LOW || this.clock.now() < this.retryAt) return;
    this.asking = true;
    this.parent.lease(LEASE);
  }

  private giveBack(): void {
    this.places++;
    if (this.places <= HIGH) return;
    this.parent.unlease(this.places - LEASE);
    this.places = LEASE;
  }
}
