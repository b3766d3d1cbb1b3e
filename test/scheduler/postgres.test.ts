/**
 * The shared scheduler on PostgreSQL, two nodes over one database, with `now` passed in: claims
 * never overlap (FOR UPDATE SKIP LOCKED), a lease left to run out is taken over, renewing keeps
 * it, a release sets the next try, pausing a kind is per node and the admin commands see every node.
 */
import { closeSync } from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PostgresQueueBackend } from '../../src/queue/postgres.js';
import { sharedQueueSettings, WakeListener } from '../../src/queue/pg-pool.js';
import { PostgresScheduler } from '../../src/scheduler/postgres.js';
import type { EnvelopeKind } from '../../src/queue/envelope.js';
import { pgDatabase, pgQuery, pgSkip } from '../harness/pg-db.js';
import { eventually } from '../harness/mail.js';
import { makeQueue, newEnvelope, tempDir } from '../queue/helpers.js';

const skip = await pgSkip();
const T0 = 1_780_000_000;
const ALL = new Set<EnvelopeKind>(['mda', 'mta', 'bounce']);

async function cluster(t: { after(fn: () => Promise<void>): void }, lease = 10) {
  const url = await pgDatabase(t);
  const { dir, cleanup } = await tempDir('tsmtpd-pgs-');
  const q = makeQueue(new PostgresQueueBackend(dir, sharedQueueSettings({ url }, dir)), dir);
  await q.open();
  const a = new PostgresScheduler(sharedQueueSettings({ url, node: 'a', lease }, dir));
  const b = new PostgresScheduler(sharedQueueSettings({ url, node: 'b', lease }, dir));
  await a.open();
  await b.open();
  t.after(async () => {
    await a.close();
    await b.close();
    await q.close();
    await cleanup();
  });
  const store = async (n: number, over: Parameters<typeof newEnvelope>[0] = {}) => {
    const { msgid, path, fd } = await q.create();
  closeSync(fd);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(path, 'x\r\n');
    return q.commit(msgid, Array.from({ length: n }, (_, i) => newEnvelope({ rcpt: `r${i}@example.org`, createdAt: T0, ...over })), 3);
  };
  return { q, a, b, store, url };
}

test('postgres scheduler: two nodes claiming at once never take the same envelope, and take them all', { skip }, async (t) => {
  const { a, b, store } = await cluster(t);
  const ids = [];
  for (let i = 0; i < 20; i++) ids.push(...(await store(3)).map((e) => e.id));
  const got: string[] = [];
  for (let round = 0; round < 10; round++) {
    const [x, y] = await Promise.all([a.claim(T0, 7, ALL, []), b.claim(T0, 7, ALL, [])]);
    got.push(...x.deliver.map((c) => c.evpid), ...y.deliver.map((c) => c.evpid));
  }
  assert.equal(new Set(got).size, got.length, 'no envelope claimed twice');
  assert.deepEqual(got.sort(), ids.sort());
});

test('postgres scheduler: a lease that runs out is taken over by the other node; a renewed one is not', { skip }, async (t) => {
  const { a, b, store } = await cluster(t, 10);
  const [e1, e2] = await store(2);
  assert.equal((await a.claim(T0, 10, ALL, [])).deliver.length, 2);
  assert.equal((await b.claim(T0 + 5, 10, ALL, [])).deliver.length, 0, 'leased to a');
  assert.deepEqual(await a.renew(T0 + 5, [e1!.id]), [e1!.id]);
  const taken = await b.claim(T0 + 11, 10, ALL, []);
  assert.deepEqual(taken.deliver.map((c) => [c.evpid, c.takenFrom]), [[e2!.id, 'a']], 'e2 ran out; e1 was renewed until T0+15');
  assert.deepEqual(await a.renew(T0 + 11, [e2!.id]), [], 'a no longer holds e2');
  const listed = await a.list(T0 + 12);
  assert.deepEqual(listed.map((e) => [e.evpid, e.state, e.holder]).sort(), [[e1!.id, 'inflight', 'a'], [e2!.id, 'inflight', 'b']].sort());
});

test('postgres scheduler: a release sets the next try; a node restarting frees its old leases', { skip }, async (t) => {
  const { a, b, store } = await cluster(t);
  const [e] = await store(1);
  await a.claim(T0, 10, ALL, []);
  await a.release(e!.id, { tries: 1, lastTry: T0, nextTry: T0 + 10 });
  assert.equal((await b.claim(T0 + 5, 10, ALL, [])).deliver.length, 0);
  assert.equal(await b.nextWakeAt(T0 + 5, ALL), T0 + 10);
  assert.equal((await b.claim(T0 + 10, 10, ALL, [])).deliver[0]?.tries, 1);
  assert.equal(await b.releaseAll(), 1);
  assert.equal((await a.claim(T0 + 10, 10, ALL, [])).deliver.length, 1);
});

test('postgres scheduler: a node with mta paused leaves mta mail to the others; expired mail is claimed to bounce once', { skip }, async (t) => {
  const { a, b, store } = await cluster(t);
  await store(2, { kind: 'mta' });
  const [old] = await store(1, { kind: 'mta', ttl: 60 });
  assert.equal((await a.claim(T0, 10, new Set(['mda']), [])).deliver.length, 0);
  const late = await Promise.all([a.claim(T0 + 61, 10, new Set(['mda']), []), b.claim(T0 + 61, 10, ALL, [])]);
  assert.deepEqual(late.flatMap((r) => r.expire.map((c) => c.evpid)), [old!.id], 'expired once, by one node');
  assert.equal(late[1].deliver.length, 2);
});

test('postgres scheduler: admin commands act on every node; delay notices are owed once', { skip }, async (t) => {
  const { a, b, store } = await cluster(t);
  const envs = await store(2);
  const msgid = envs[0]!.msgid;
  assert.deepEqual((await a.command(T0, 'suspend', msgid)).length, 2);
  assert.equal((await b.claim(T0, 10, ALL, [])).deliver.length, 0, 'suspended on a, for b too');
  assert.equal((await b.list(T0)).every((e) => e.suspended), true);
  await b.command(T0, 'resume', 'all');
  const got = await a.claim(T0, 10, ALL, []);
  await a.release(envs[0]!.id, { tries: 1, lastTry: T0, nextTry: T0 + 1000 });
  await a.release(envs[1]!.id, { tries: 1, lastTry: T0, nextTry: T0 + 1000 });
  assert.equal(got.deliver.length, 2);
  assert.deepEqual((await b.command(T0 + 1, 'schedule', envs[1]!.id)), [envs[1]!.id]);
  const warned = await Promise.all([a.claim(T0 + 400, 0, ALL, [300]), b.claim(T0 + 400, 0, ALL, [300])]);
  assert.equal(warned.flatMap((w) => w.warn).length, 2, 'each envelope warned once');
  assert.equal((await a.claim(T0 + 500, 0, ALL, [300])).warn.length, 0);
  const removed = await a.command(T0 + 500, 'remove', envs[0]!.id);
  assert.deepEqual(removed, [envs[0]!.id]);
  assert.equal(await a.count(), 2, 'the queue deletes it, not the scheduler');
  await a.command(T0 + 500, 'suspend', envs[1]!.id);
  await b.command(T0 + 501, 'schedule', envs[1]!.id);
  assert.deepEqual((await a.list(T0 + 501)).filter((e) => e.evpid === envs[1]!.id).map((e) => [e.suspended, e.nextTry]), [[true, T0 + 501]],
    'schedule makes it due but leaves it paused');
});

test('postgres scheduler: LISTEN/NOTIFY wakes a node, also after the server dropped its listening connection', { skip }, async (t) => {
  const url = await pgDatabase(t);
  let wakes = 0;
  const listener = new WakeListener(url, () => void wakes++);
  listener.start();
  t.after(() => listener.stop());
  const listening = async () => (await pgQuery(url, `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN tsmtpd_queue'`)).length > 0;
  await eventually(async () => (await listening()) || undefined, 'the listener connected');
  const before = wakes;
  await pgQuery(url, `NOTIFY tsmtpd_queue`);
  await eventually(async () => wakes > before || undefined, 'a wake on NOTIFY');
  await pgQuery(url, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN tsmtpd_queue'`);
  await eventually(async () => (await listening()) || undefined, 'the listener back', 15_000);
  const again = wakes;
  await pgQuery(url, `NOTIFY tsmtpd_queue`);
  await eventually(async () => wakes > again || undefined, 'a wake on NOTIFY after the reconnection');
});
