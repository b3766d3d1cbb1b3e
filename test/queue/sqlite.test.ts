/** The sqlite backend: the shared suite, bodies as files beside the database, and a failing step rolling the transaction back. */
import { test } from 'node:test';
import { mkdirSync } from 'node:fs';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { QueueError } from '../../src/queue/queue.js';
import { SqliteQueueBackend } from '../../src/queue/sqlite.js';
import { queueBackendSuite } from './conformance.js';
import { collect, makeQueue, submit, tempDir } from './helpers.js';

queueBackendSuite('sqlite', (spool) => new SqliteQueueBackend(spool), {
  persistent: true,
  async corruptEnvelope(b, evpid) {
    (b as SqliteQueueBackend).db.prepare('UPDATE envelopes SET record = ? WHERE evpid = ?').run('{"version":1,"id":3}', evpid);
  },
  async rawEnvelope(b, evpid) {
    return Buffer.from((b as SqliteQueueBackend).db.prepare('SELECT record FROM envelopes WHERE evpid = ?').pluck().get(evpid) as Uint8Array);
  },
  async tamperBody(b, msgid) {
    const path = (b as SqliteQueueBackend).bodyPath(msgid);
    const data = await readFile(path);
    data[data.length >> 1] ^= 0x01;
    await writeFile(path, data);
  },
});

test('sqlite: a body is a file beside the database, gone with the last envelope (its space back at once)', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const backend = new SqliteQueueBackend(dir);
  const q = makeQueue(backend, dir);
  await q.open();
  t.after(() => q.close());
  const body = randomBytes(200 * 1024);
  const [a, b] = await submit(q, body, 2);
  assert.deepEqual(await readFile(backend.bodyPath(a!.msgid)), body);
  await q.remove([a!.id]);
  assert.equal((await stat(backend.bodyPath(a!.msgid))).size, body.length, 'kept for the other envelope');
  await q.remove([b!.id]);
  await assert.rejects(stat(backend.bodyPath(a!.msgid)), { code: 'ENOENT' });
  assert.deepEqual(await collect(q.messages()), []);
});

test('sqlite: a body whose commit never finished is removed at open; committed ones stay', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  let backend = new SqliteQueueBackend(dir);
  let q = makeQueue(backend, dir);
  await q.open();
  const [kept] = await submit(q, 'committed');
  const orphan = backend.bodyPath(`${kept!.msgid.slice(0, 2)}abcdef`);
  await mkdir(dirname(orphan), { recursive: true });
  await writeFile(orphan, 'linked, then the process died before the transaction');
  await q.close();
  backend = new SqliteQueueBackend(dir);
  q = makeQueue(backend, dir);
  await q.open();
  t.after(() => q.close());
  await assert.rejects(stat(orphan), { code: 'ENOENT' });
  assert.equal((await readFile(backend.bodyPath(kept!.msgid))).toString(), 'committed');
  assert.deepEqual((await collect(q.walk())).map((e) => e.id), [kept!.id]);
});

test('sqlite: a database that keeps bodies inside (the earlier layout) is refused, never half read', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  mkdirSync(join(dir, 'queue'));
  const old = new Database(join(dir, 'queue', 'queue.sqlite'));
  old.exec('CREATE TABLE chunks (msgid TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (msgid, seq))');
  old.close();
  const q = makeQueue(new SqliteQueueBackend(dir), dir);
  await assert.rejects(q.open(), (e: unknown) => e instanceof QueueError && /bodies inside the database/.test(e.message));
});

test('sqlite: SQLITE_FULL-like failure at any step: QueueError full, nothing stored', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  let armed = Infinity;
  let seen = 0;
  const fault = (step: string): void => {
    if (seen++ >= armed) throw Object.assign(new Error(`disk full at ${step}`), { code: 'SQLITE_FULL' });
  };
  const q = makeQueue(new SqliteQueueBackend(dir, { fault }), dir);
  await q.open();
  t.after(() => q.close());
  const [kept] = await submit(q, 'survivor');
  for (let i = 0; i < 4; i++) {
    seen = 0;
    armed = i;
    await assert.rejects(submit(q, randomBytes(100 * 1024), 2), (e: unknown) => e instanceof QueueError && e.code === 'full');
    armed = Infinity;
    assert.deepEqual((await collect(q.walk())).map((e) => e.id), [kept!.id]);
    assert.deepEqual(await collect(q.messages()), [kept!.msgid]);
    assert.deepEqual(await readdir(join(dir, 'incoming')), []);
    const buckets = await readdir(join(dir, 'queue', 'bodies'));
    assert.deepEqual((await Promise.all(buckets.map((b) => readdir(join(dir, 'queue', 'bodies', b))))).flat(), [kept!.msgid]);
  }
});
