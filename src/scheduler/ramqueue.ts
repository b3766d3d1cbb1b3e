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
  /** Due entries per destination, by message, waiting for room in flight; each is queued once, not re-sorted. */
  private readonly ready = new Map<string, ReadyMessages>();
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

  batch(now: number, max: number, kinds: ReadonlySet<EnvelopeKind>, warnIntervals: number[], perMessage = 256): Batch {
    // entries indexed before the intervals were known (or before they changed) woke too late
    if (warnIntervals.length !== this.warnIntervals.length || warnIntervals.some((d, i) => d !== this.warnIntervals[i])) {
      this.warnIntervals = [...warnIntervals];
      for (const e of this.entries.values()) this.index(e);
    }
    const out: Batch = { deliver: [], expire: [], warn: [], nextWakeAt: Infinity };
    this.promote(now, warnIntervals, out);
    this.take(now, max, kinds, out, perMessage);
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
        q = new ReadyMessages();
        this.ready.set(e.queueKey, q);
      }
      q.push(e.msgid, { evpid: e.evpid, version: top.version });
    }
  }

  /** An entry from a ready queue, if it is still what was queued (not updated, removed or suspended since). */
  private live(item: HeapItem | { evpid: string; version: number }): SchedulerEntry | undefined {
    const e = this.entries.get(item.evpid);
    return e && this.versions.get(e.evpid) === item.version && e.state === 'pending' && !e.suspended ? e : undefined;
  }

  /**
   * Round-robin over destinations (action + domain), a message at a time: one destination cannot
   * starve the others, and a message's recipients there leave together, so the mta can put them
   * in one transaction.
   */
  private take(now: number, max: number, kinds: ReadonlySet<EnvelopeKind>, out: Batch, perMessage: number): void {
    const keys = [...this.ready.keys()];
    // a full turn over the destinations without taking anything ends the round
    for (let i = 0, idle = 0; out.deliver.length < max && idle < keys.length; i++) {
      const key = keys[i % keys.length]!;
      const q = this.ready.get(key);
      const head = q && this.liveHead(q);
      if (!q || !head) {
        this.ready.delete(key);
        idle++;
        continue;
      }
      if (!kinds.has(head.kind)) {
        idle++;
        continue;
      }
      idle = 0;
      for (const e of q.takeMessage(perMessage, (item) => this.live(item))) {
        if (now >= e.expiresAt) out.expire.push(e.evpid);
        else out.deliver.push(e.evpid);
      }
      // served: to the back of the line, so the next round starts with the others
      this.ready.delete(key);
      this.ready.set(key, q);
    }
  }

  /** The first live entry of a destination's ready messages, dropping stale items on the way. */
  private liveHead(q: ReadyMessages): SchedulerEntry | undefined {
    for (let head = q.peek(); head; head = q.peek()) {
      const e = this.live(head);
      if (e) return e;
      q.dropHead();
    }
    return undefined;
  }

  private hasReady(kinds: ReadonlySet<EnvelopeKind>): boolean {
    for (const q of this.ready.values()) {
      const e = this.liveHead(q);
      if (e && kinds.has(e.kind)) return true;
    }
    return false;
  }
}

type ReadyItem = { evpid: string; version: number };

/** One destination's due entries, grouped by message, messages in the order they became due. */
class ReadyMessages {
  private readonly order = new Fifo<string>();
  private readonly byMessage = new Map<string, ReadyItem[]>();

  push(msgid: string, item: ReadyItem): void {
    const items = this.byMessage.get(msgid);
    if (items) return void items.push(item);
    this.byMessage.set(msgid, [item]);
    this.order.push(msgid);
  }

  peek(): ReadyItem | undefined {
    const msgid = this.order.peek();
    return msgid === undefined ? undefined : this.byMessage.get(msgid)![0];
  }

  dropHead(): void {
    const msgid = this.order.peek()!;
    const items = this.byMessage.get(msgid)!;
    items.shift();
    if (items.length === 0) this.forget(msgid);
  }

  /** Up to `n` live entries of the first message; what is left of it stays first in line. */
  takeMessage(n: number, live: (item: ReadyItem) => SchedulerEntry | undefined): SchedulerEntry[] {
    const msgid = this.order.peek();
    if (msgid === undefined) return [];
    const items = this.byMessage.get(msgid)!;
    const out: SchedulerEntry[] = [];
    while (items.length > 0 && out.length < n) {
      const e = live(items.shift()!);
      if (e) out.push(e);
    }
    if (items.length === 0) this.forget(msgid);
    return out;
  }

  private forget(msgid: string): void {
    this.byMessage.delete(msgid);
    this.order.shift();
  }
}

/** A queue with O(1) push and shift, compacted as it drains. */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
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
