/**
 * The sqlite scheduler: the shared suite, then what ramqueue cannot do — the schedule survives a
 * restart. The queue re-submits every envelope at start as the role builds it from the envelope
 * (not suspended, retry from the backoff); the stored entry wins, as OpenSMTPD's persistent
 * schedulers would keep RQ_ENVELOPE_SUSPEND and the envelope's retry time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvelopeKind } from '../../src/queue/envelope.js';
import { SqliteScheduler } from '../../src/scheduler/sqlite.js';
import { entry, schedulerBackendSuite, T } from './conformance.js';

const ALL = new Set<EnvelopeKind>(['mda', 'mta', 'bounce']);
const dir = mkdtempSync(join(tmpdir(), 'tsmtpd-sched-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(dir, `s${n++}.sqlite`);

schedulerBackendSuite('sqlite', () => new SqliteScheduler(fresh()));

test('sqlite: suspension, a retry time and a delay notice survive a restart; the run state does not', () => {
  const path = fresh();
  let s = new SqliteScheduler(path);
  for (const i of [1, 2, 3, 4]) s.insert(entry(i));
  s.update({ ...s.get(entry(1).evpid)!, suspended: true });
  s.update({ ...s.get(entry(2).evpid)!, tries: 1, lastTry: T, nextTry: T + 7200 });
  s.update({ ...s.get(entry(3).evpid)!, state: 'inflight' });
  s.remove(entry(4).evpid);
  s.close();

  s = new SqliteScheduler(path);
  assert.equal(s.size, 0, 'nothing is scheduled before the queue re-submits it');
  // as the role rebuilds them from the envelopes: the queue recorded the try of entry 2
  for (const i of [1, 3, 4]) s.insert(entry(i));
  s.insert(entry(2, { tries: 1, lastTry: T, nextTry: T + 900 }));
  assert.equal(s.get(entry(1).evpid)!.suspended, true);
  assert.equal(s.get(entry(2).evpid)!.nextTry, T + 7200, 'the retry time set before the restart');
  assert.equal(s.get(entry(3).evpid)!.state, 'pending', 'nothing is in flight after a restart');
  assert.equal(s.get(entry(4).evpid)!.suspended, false, 'a removed entry leaves nothing behind');
  assert.deepEqual(s.batch(T, 10, ALL, []).deliver.sort(), [entry(3).evpid, entry(4).evpid].sort());
  s.close();
});

test('sqlite: a try the queue recorded after the schedule was written brings its own retry time; suspension stays', () => {
  const path = fresh();
  let s = new SqliteScheduler(path);
  s.insert(entry(1));
  s.update({ ...s.get(entry(1).evpid)!, suspended: true, nextTry: T + 50 });
  s.close();
  s = new SqliteScheduler(path);
  s.insert(entry(1, { tries: 2, lastTry: T + 10, nextTry: T + 1800 }));
  assert.deepEqual({ ...s.get(entry(1).evpid)! }, { ...entry(1), tries: 2, lastTry: T + 10, nextTry: T + 1800, suspended: true });
  s.close();
});

test('sqlite: a delay notice sent is remembered, so a restart does not send it again', () => {
  const path = fresh();
  let s = new SqliteScheduler(path);
  s.insert(entry(1, { tries: 1, lastTry: T, nextTry: T + 1e6 }));
  assert.deepEqual(s.batch(T + 4 * 3600, 10, ALL, [4 * 3600]).warn, [entry(1).evpid]);
  s.close();
  s = new SqliteScheduler(path);
  s.insert(entry(1, { tries: 1, lastTry: T, nextTry: T + 1e6 }));
  assert.deepEqual(s.batch(T + 4 * 3600 + 60, 10, ALL, [4 * 3600]).warn, []);
  s.close();
});

test('sqlite: stored entries the queue never re-submits go once expired', () => {
  const path = fresh();
  let s = new SqliteScheduler(path);
  s.insert(entry(1, { suspended: true }));
  s.close();
  s = new SqliteScheduler(path);
  s.batch(T + 86400 + 1, 10, ALL, []);
  s.close();
  s = new SqliteScheduler(path);
  s.insert(entry(1));
  assert.equal(s.get(entry(1).evpid)!.suspended, false);
  s.close();
});
