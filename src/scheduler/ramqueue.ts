/**
 * `ramqueue`, the default scheduler backend: entries in a map, pending ones in a min-heap keyed
 * by their next event (try, delay notice or expiry), with stale heap items skipped lazily. It is
 * rebuilt from the queue at every start, so it keeps nothing on disk.
 */
import type { EnvelopeKind } from '../queue/envelope.js';
import type { Batch, SchedulerBackend, SchedulerEntry } from './backend.js';
import { nextWarn } from './backoff.js';

interface HeapItem {
  at: number;
  evpid: string;
  version: number;
}

class MinHeap {
  private items: HeapItem[] = [];

  get length(): number {
    return this.items.length;
  }

  peek(): HeapItem | undefined {
    return this.items[0];
  }

  push(item: HeapItem): void {
    const a = this.items;
    a.push(item);
    for (let i = a.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (a[p]!.at <= a[i]!.at) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }

  pop(): HeapItem | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]!.at < a[m]!.at) m = l;
        if (r < a.length && a[r]!.at < a[m]!.at) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}

export class RamQueue implements SchedulerBackend {
  private readonly entries = new Map<string, SchedulerEntry>();
  private readonly versions = new Map<string, number>();
  private readonly heap = new MinHeap();
  /** Due entries per destination, waiting for room in flight; each is queued once, not re-sorted. */
  private readonly ready = new Map<string, Fifo>();
  private warnIntervals: number[] = [];

  get size(): number {
    return this.entries.size;
  }

  insert(entry: SchedulerEntry): void {
    this.entries.set(entry.evpid, entry);
    this.index(entry);
  }

  get(evpid: string): SchedulerEntry | undefined {
    return this.entries.get(evpid);
  }

  update(entry: SchedulerEntry): void {
    if (!this.entries.has(entry.evpid)) return;
    this.entries.set(entry.evpid, entry);
    this.index(entry);
  }

  remove(evpid: string): void {
    this.entries.delete(evpid);
    this.versions.delete(evpid);
  }

  list(msgid?: string): SchedulerEntry[] {
    const all = [...this.entries.values()];
    return msgid ? all.filter((e) => e.msgid === msgid) : all;
  }

  private wakeAt(e: SchedulerEntry): number {
    return Math.min(e.nextTry, e.expiresAt, nextWarn(e.createdAt, e.lastWarn, e.tries, this.warnIntervals));
  }

  /** Only pending, unsuspended entries are in the heap; a new version makes older items stale. */
  private index(e: SchedulerEntry): void {
    const version = (this.versions.get(e.evpid) ?? 0) + 1;
    this.versions.set(e.evpid, version);
    if (e.state === 'pending' && !e.suspended) this.heap.push({ at: this.wakeAt(e), evpid: e.evpid, version });
  }

  batch(now: number, max: number, kinds: ReadonlySet<EnvelopeKind>, warnIntervals: number[]): Batch {
    // entries indexed before the intervals were known (or before they changed) woke too late
    if (warnIntervals.length !== this.warnIntervals.length || warnIntervals.some((d, i) => d !== this.warnIntervals[i])) {
      this.warnIntervals = [...warnIntervals];
      for (const e of this.entries.values()) this.index(e);
    }
    const out: Batch = { deliver: [], expire: [], warn: [], nextWakeAt: Infinity };
    this.promote(now, warnIntervals, out);
    this.take(now, max, kinds, out);
    // what is ready but was not taken (no room, or more than max) wants the next round at once
    out.nextWakeAt = this.hasReady(kinds) ? now : (this.heap.peek()?.at ?? Infinity);
    return out;
  }

  /** Move every due entry from the heap to its destination's ready queue (or to expiry). */
  private promote(now: number, warnIntervals: number[], out: Batch): void {
    for (let top = this.heap.peek(); top && top.at <= now; top = this.heap.peek()) {
      this.heap.pop();
      const e = this.entries.get(top.evpid);
      if (!e || this.versions.get(e.evpid) !== top.version) continue;
      if (now >= e.expiresAt) {
        out.expire.push(e.evpid);
        continue;
      }
      if (nextWarn(e.createdAt, e.lastWarn, e.tries, warnIntervals) <= now) {
        out.warn.push(e.evpid);
        e.lastWarn = now;
      }
      if (e.nextTry > now) {
        this.index(e);
        continue;
      }
      let q = this.ready.get(e.queueKey);
      if (!q) {
        q = new Fifo();
        this.ready.set(e.queueKey, q);
      }
      q.push({ evpid: e.evpid, version: top.version });
    }
  }

  /** An entry from a ready queue, if it is still what was queued (not updated, removed or suspended since). */
  private live(item: HeapItem | { evpid: string; version: number }): SchedulerEntry | undefined {
    const e = this.entries.get(item.evpid);
    return e && this.versions.get(e.evpid) === item.version && e.state === 'pending' && !e.suspended ? e : undefined;
  }

  /** Round-robin over destinations (action + domain): one big message cannot starve the others. */
  private take(now: number, max: number, kinds: ReadonlySet<EnvelopeKind>, out: Batch): void {
    let progress = true;
    while (out.deliver.length < max && progress) {
      progress = false;
      for (const [key, q] of this.ready) {
        if (out.deliver.length >= max) break;
        let head = q.peek();
        while (head && !this.live(head)) {
          q.shift();
          head = q.peek();
        }
        if (!head) {
          this.ready.delete(key);
          continue;
        }
        const e = this.live(head)!;
        if (!kinds.has(e.kind)) continue;
        q.shift();
        progress = true;
        if (now >= e.expiresAt) out.expire.push(e.evpid);
        else out.deliver.push(e.evpid);
      }
    }
  }

  private hasReady(kinds: ReadonlySet<EnvelopeKind>): boolean {
    for (const q of this.ready.values()) {
      const head = q.peek();
      const e = head && this.live(head);
      if (e && kinds.has(e.kind)) return true;
    }
    return false;
  }
}

/** A queue with O(1) push and shift, compacted as it drains. */
class Fifo {
  private items: { evpid: string; version: number }[] = [];
  private head = 0;

  push(item: { evpid: string; version: number }): void {
    this.items.push(item);
  }

  peek(): { evpid: string; version: number } | undefined {
    return this.items[this.head];
  }

  shift(): void {
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}
