/**
 * `-B scheduler=sqlite`: ramqueue's schedule, kept in SPOOL/queue/scheduler.sqlite as well, so
 * what only the scheduler knows survives a restart: a suspended (paused) envelope stays
 * suspended, a retry time set by hand or by the backoff is kept, a delay notice is not sent
 * twice. Each entry is stored whole (but for its run state), so fields the schedule gains later
 * are kept too. The queue still re-submits every envelope at start; an entry found here for it
 * wins over the one rebuilt from the envelope, unless the queue has since recorded another try.
 */
import Database from 'better-sqlite3';
import type { EnvelopeKind } from '../queue/envelope.js';
import type { Batch, SchedulerBackend, SchedulerEntry } from './backend.js';
import { RamQueue } from './ramqueue.js';

export const SCHEDULER_FILE = 'queue/scheduler.sqlite';

type Stored = Omit<SchedulerEntry, 'state'>;

/** What is stored of an entry: all but its run state (nothing is in flight after a restart). */
function stored(e: SchedulerEntry): string {
  const { state: _state, ...rest } = e;
  return JSON.stringify(rest);
}

export class SqliteScheduler implements SchedulerBackend {
  private readonly ram = new RamQueue();
  private readonly db: Database.Database;
  /** Entries of the last run not yet re-submitted by the queue. */
  private readonly remembered = new Map<string, Stored>();
  /** The stored form of each entry, so a change of run state alone writes nothing. */
  private readonly written = new Map<string, string>();
  private readonly put: Database.Statement;
  private readonly del: Database.Statement;
  private pruneAt = 0;

  constructor(path: string) {
    this.db = new Database(path);
    // a committed change survives the process being killed; WAL keeps writers off the readers
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec('CREATE TABLE IF NOT EXISTS schedule (evpid TEXT PRIMARY KEY, entry TEXT NOT NULL)');
    this.put = this.db.prepare('INSERT INTO schedule (evpid, entry) VALUES (?, ?) ON CONFLICT (evpid) DO UPDATE SET entry = excluded.entry');
    this.del = this.db.prepare('DELETE FROM schedule WHERE evpid = ?');
    for (const row of this.db.prepare('SELECT evpid, entry FROM schedule').all() as { evpid: string; entry: string }[]) {
      try {
        this.remembered.set(row.evpid, JSON.parse(row.entry) as Stored);
      } catch {
        this.del.run(row.evpid);
      }
    }
  }

  get size(): number {
    return this.ram.size;
  }

  private save(e: SchedulerEntry): void {
    const text = stored(e);
    // a message the role handles while it stops finds the file closed: the next start re-reads the queue
    if (this.written.get(e.evpid) === text || !this.db.open) return;
    this.put.run(e.evpid, text);
    this.written.set(e.evpid, text);
  }

  insert(entry: SchedulerEntry): void {
    const saved = this.remembered.get(entry.evpid);
    this.remembered.delete(entry.evpid);
    let e = entry;
    if (saved) {
      // what the envelope says of itself stays; what only the schedule knew comes back
      e = { ...saved, ...pick(entry), state: 'pending' };
      // a try the queue recorded after the schedule was last written: its own retry time holds
      if (saved.tries !== entry.tries) e = { ...e, tries: entry.tries, lastTry: entry.lastTry, nextTry: entry.nextTry };
    }
    this.ram.insert(e);
    this.save(e);
  }

  get(evpid: string): SchedulerEntry | undefined {
    return this.ram.get(evpid);
  }

  update(entry: SchedulerEntry): void {
    if (!this.ram.get(entry.evpid)) return;
    this.ram.update(entry);
    this.save(entry);
  }

  remove(evpid: string): void {
    this.ram.remove(evpid);
    this.remembered.delete(evpid);
    this.written.delete(evpid);
    if (this.db.open) this.del.run(evpid);
  }

  list(msgid?: string): SchedulerEntry[] {
    return this.ram.list(msgid);
  }

  batch(now: number, max: number, kinds: ReadonlySet<EnvelopeKind>, warnIntervals: number[], perMessage?: number): Batch {
    const batch = this.ram.batch(now, max, kinds, warnIntervals, perMessage);
    // ramqueue notes a delay notice on the entry itself
    for (const evpid of batch.warn) {
      const e = this.ram.get(evpid);
      if (e) this.save(e);
    }
    this.prune(now);
    return batch;
  }

  /**
   * Entries whose envelope the queue no longer has (it was deleted while the schedule could not
   * hear of it) are never re-submitted: they go once they have expired.
   */
  private prune(now: number): void {
    if (this.remembered.size === 0 || now < this.pruneAt) return;
    this.pruneAt = now + 3600;
    for (const [evpid, e] of this.remembered) {
      if (e.expiresAt >= now) continue;
      this.remembered.delete(evpid);
      this.del.run(evpid);
    }
  }

  close(): void {
    this.db.close();
  }
}

/** The fields an envelope itself carries, which a re-submission brings fresh. */
function pick(e: SchedulerEntry): Pick<SchedulerEntry, 'evpid' | 'msgid' | 'kind' | 'queueKey' | 'createdAt' | 'expiresAt'> {
  return { evpid: e.evpid, msgid: e.msgid, kind: e.kind, queueKey: e.queueKey, createdAt: e.createdAt, expiresAt: e.expiresAt };
}
