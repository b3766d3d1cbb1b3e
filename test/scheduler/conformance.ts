/**
 * What every scheduler backend does, each run through it (ramqueue, sqlite): due entries,
 * fairness across destinations, expiry, warnings, suspension and the batch cap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SchedulerEntry } from '../../src/scheduler/backend.js';
import type { SchedulerBackend } from '../../src/scheduler/backend.js';
import type { EnvelopeKind } from '../../src/queue/envelope.js';

const ALL = new Set<EnvelopeKind>(['mda', 'mta', 'bounce']);
export const T = 1_000_000;

/** Envelope n of its own message (`msgid` in `over` puts several in one message). */
export function entry(n: number, over: Partial<SchedulerEntry> = {}): SchedulerEntry {
  const msgid = over.msgid ?? n.toString(16).padStart(8, 'a');
  const evpid = `${msgid}${n.toString(16).padStart(8, '0')}`;
  return {
    evpid, msgid, kind: 'mta', queueKey: 'relay|example.com', createdAt: T, expiresAt: T + 86400,
    tries: 0, lastTry: 0, lastWarn: 0, nextTry: T, state: 'pending', suspended: false, ...over,
  };
}

export function schedulerBackendSuite(name: string, make: () => SchedulerBackend): void {
  test(`${name}: due entries are handed out once; future ones set the wake time`, () => {
    const q = make();
    q.insert(entry(1));
    q.insert(entry(2, { nextTry: T + 500 }));
    assert.equal(q.size, 2);
    const b = q.batch(T, 10, ALL, []);
    assert.deepEqual(b, { deliver: [entry(1).evpid], expire: [], warn: [], nextWakeAt: T + 500 });
    // not indexed again until the role updates it
    assert.deepEqual(q.batch(T + 100, 10, ALL, []).deliver, []);
    assert.deepEqual(q.batch(T + 500, 10, ALL, []).deliver, [entry(2).evpid]);
    assert.equal(q.batch(T + 500, 10, ALL, []).nextWakeAt, Infinity);
  });

  test(`${name}: fairness: destinations take turns, so one big queue does not starve the others`, () => {
    const q = make();
    for (let i = 0; i < 10; i++) q.insert(entry(i, { queueKey: 'relay|big.example' }));
    q.insert(entry(100, { queueKey: 'relay|small.example' }));
    q.insert(entry(101, { queueKey: 'local|small.example', kind: 'mda' }));
    const b = q.batch(T, 5, ALL, []);
    assert.equal(b.deliver.length, 5);
    for (const id of [entry(100).evpid, entry(101).evpid]) assert.ok(b.deliver.includes(id), id);
    // what did not fit is due at once and comes next
    assert.equal(b.nextWakeAt, T);
    const rest = q.batch(T, 100, ALL, []).deliver;
    assert.equal(rest.length, 7);
    assert.equal(new Set([...b.deliver, ...rest]).size, 12);
  });

  test(`${name}: the cap: max 0 hands nothing out and loses nothing`, () => {
    const q = make();
    q.insert(entry(1));
    assert.deepEqual(q.batch(T, 0, ALL, []).deliver, []);
    assert.deepEqual(q.batch(T, 1, ALL, []).deliver, [entry(1).evpid]);
  });

  test(`${name}: expiry: an entry past its ttl is expired, not delivered`, () => {
    const q = make();
    q.insert(entry(1, { expiresAt: T + 10, nextTry: T + 1000 }));
    assert.equal(q.batch(T, 10, ALL, []).nextWakeAt, T + 10);
    assert.deepEqual(q.batch(T + 10, 10, ALL, []), { deliver: [], expire: [entry(1).evpid], warn: [], nextWakeAt: Infinity });
  });

  test(`${name}: warnings: once per interval after a failure, delivery unaffected`, () => {
    const q = make();
    // inserted before any batch told the backend the intervals: the first warning must not wait for the try
    q.insert(entry(1, { tries: 1, nextTry: T + 1000 }));
    const first = q.batch(T + 100, 10, ALL, [100, 600]);
    assert.deepEqual(first, { deliver: [], expire: [], warn: [entry(1).evpid], nextWakeAt: T + 600 });
    assert.deepEqual(q.batch(T + 100, 10, ALL, [100, 600]).warn, []);
    assert.deepEqual(q.batch(T + 600, 10, ALL, [100, 600]).warn, [entry(1).evpid]);
    const due = q.batch(T + 1000, 10, ALL, [100, 600]);
    assert.deepEqual([due.deliver, due.warn], [[entry(1).evpid], []]);
    // never warned before a first failure
    const fresh = make();
    fresh.insert(entry(2, { nextTry: T + 1000 }));
    assert.deepEqual(fresh.batch(T + 700, 10, ALL, [100]).warn, []);
  });

  test(`${name}: suspended and inflight entries wait; resuming and retrying bring them back`, () => {
    const q = make();
    q.insert(entry(1, { suspended: true }));
    q.insert(entry(2, { state: 'inflight' }));
    assert.deepEqual(q.batch(T, 10, ALL, []), { deliver: [], expire: [], warn: [], nextWakeAt: Infinity });
    q.update({ ...q.get(entry(1).evpid)!, suspended: false });
    q.update({ ...q.get(entry(2).evpid)!, state: 'pending', tries: 1, nextTry: T + 400 });
    assert.deepEqual(q.batch(T, 10, ALL, []).deliver, [entry(1).evpid]);
    assert.deepEqual(q.batch(T + 400, 10, ALL, []).deliver, [entry(2).evpid]);
    // an update of an unknown entry does not create it
    q.update(entry(9));
    assert.equal(q.get(entry(9).evpid), undefined);
  });

  test(`${name}: paused kinds are parked without busy waking, and delivered once allowed`, () => {
    const q = make();
    q.insert(entry(1, { kind: 'mta' }));
    q.insert(entry(2, { kind: 'mda', nextTry: T + 50 }));
    const paused = q.batch(T, 10, new Set<EnvelopeKind>(['mda']), []);
    assert.deepEqual(paused.deliver, []);
    assert.equal(paused.nextWakeAt, T + 50);
    assert.deepEqual(q.batch(T, 10, ALL, []).deliver, [entry(1).evpid]);
  });

  test(`${name}: removed entries and stale versions are skipped; list filters by message`, () => {
    const q = make();
    q.insert(entry(1));
    q.insert(entry(2, { msgid: 'bbbbbbbb' }));
    q.update({ ...q.get(entry(1).evpid)!, nextTry: T + 300 });
    q.remove(entry(2, { msgid: 'bbbbbbbb' }).evpid);
    assert.equal(q.size, 1);
    assert.deepEqual(q.list('bbbbbbbb'), []);
    assert.deepEqual(q.list().map((e) => e.evpid), [entry(1).evpid]);
    assert.deepEqual(q.batch(T, 10, ALL, []), { deliver: [], expire: [], warn: [], nextWakeAt: T + 300 });
    assert.deepEqual(q.batch(T + 300, 10, ALL, []).deliver, [entry(1).evpid]);
  });

  test(`${name}: a message's recipients at one destination come out together, up to max-evp-batch-size; destinations still take turns`, () => {
    const q = make();
    // two messages to 50 recipients each at big.example, one message at small.example, all due at once
    for (let i = 0; i < 100; i++) q.insert(entry(i, { msgid: i < 50 ? '0000beef' : '0000bee2', queueKey: 'relay|big.example' }));
    q.insert(entry(100, { msgid: '0000cafe', queueKey: 'relay|small.example' }));
    // max 10: a whole message passes the cap, as one unit
    const first = q.batch(T, 10, ALL, [], 256).deliver;
    assert.deepEqual(first.sort(), Array.from({ length: 50 }, (_, i) => entry(i, { msgid: '0000beef' }).evpid).sort());
    // the next round starts with the destination that waited
    const second = q.batch(T, 10, ALL, [], 256).deliver;
    assert.equal(second[0], entry(100, { msgid: '0000cafe' }).evpid);
    assert.equal(second.length, 51);
    // a per-message cap splits it in batches, the rest first in line
    const r = make();
    for (let i = 0; i < 50; i++) r.insert(entry(i, { msgid: '0000beef' }));
    assert.equal(r.batch(T, 10, ALL, [], 20).deliver.length, 20);
    assert.equal(r.batch(T, 10, ALL, [], 20).deliver.length, 20);
    assert.equal(r.batch(T, 10, ALL, [], 20).deliver.length, 10);
  });
}
