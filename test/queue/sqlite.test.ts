/** The sqlite backend: the shared suite, chunked bodies, and a failing step rolling the transaction back. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { QueueError } from '../../src/queue/queue.js';
import { SqliteQueueBackend } from '../../src/queue/sqlite.js';
import { queueBackendSuite } from './conformance.js';
import { collect, makeQueue, submit, tempDir } from './helpers.js';

queueBackendSuite('sqlite', (spool) => new SqliteQueueBackend(spool), {
  persistent: true,
  async corruptEnvelope(b, evpid) {
    (b as SqliteQueueBackend).db.prepare('UPDATE envelopes SET record = ? WHERE evpid = ?').run('{"version":1,"id":3}', evpid);
  },
  async tamperBody(b, msgid) {
    const db = (b as SqliteQueueBackend).db;
    const data = db.prepare('SELECT data FROM chunks WHERE msgid = ? AND seq = 0').pluck().get(msgid) as Buffer;
    data[data.length >> 1] ^= 0x01;
    db.prepare('UPDATE chunks SET data = ? WHERE msgid = ? AND seq = 0').run(data, msgid);
  },
});

test('sqlite: a body is stored as 64 KiB chunks', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const backend = new SqliteQueueBackend(dir);
  const q = makeQueue(backend, dir);
  await q.open();
  t.after(() => q.close());
  const [e] = await submit(q, randomBytes(200 * 1024));
  const n = backend.db.prepare('SELECT COUNT(*) FROM chunks WHERE msgid = ?').pluck().get(e!.msgid);
  assert.equal(n, 4);
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
  }
});
