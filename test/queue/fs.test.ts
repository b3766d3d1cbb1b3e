/** The fs backend: the shared suite, plus its layout and a full disk at every write step. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FsQueueBackend } from '../../src/queue/fs.js';
import { QueueError } from '../../src/queue/queue.js';
import { queueBackendSuite } from './conformance.js';
import { collect, makeQueue, submit, tempDir } from './helpers.js';

function msgDir(spool: string, msgid: string): string {
  return join(spool, 'queue', msgid.slice(0, 2), msgid);
}

queueBackendSuite('fs', (spool) => new FsQueueBackend(spool), {
  persistent: true,
  async corruptEnvelope(b, evpid) {
    await writeFile(join(msgDir((b as FsQueueBackend).spool, evpid.slice(0, 8)), evpid), '{"version":9}');
  },
  rawEnvelope: (b, evpid) => readFile(join(msgDir((b as FsQueueBackend).spool, evpid.slice(0, 8)), evpid)),
  async tamperBody(b, msgid) {
    const path = join(msgDir((b as FsQueueBackend).spool, msgid), 'message');
    const data = await readFile(path);
    data[data.length >> 1] ^= 0x01;
    await writeFile(path, data);
  },
});

test('fs: layout is queue/<XX>/<msgid>/message + <evpid>, records are versioned JSON', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const q = makeQueue(new FsQueueBackend(dir), dir);
  await q.open();
  const [e] = await submit(q, 'x');
  const md = msgDir(dir, e!.msgid);
  assert.deepEqual((await readdir(md)).sort(), [e!.id, 'message'].sort());
  assert.equal(JSON.parse(await readFile(join(md, e!.id), 'utf8')).version, 1);
  assert.deepEqual(await readdir(join(dir, 'incoming')), [], 'the incoming body is gone after commit');
  await q.close();
});

/** Every write step, failing in turn with ENOSPC (and after it, as a full disk stays full), must leave the queue as if commit never ran. */
test('fs: ENOSPC at each write step of a commit: QueueError full, nothing half-written remains', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  let armed = Infinity;
  let seen = 0;
  const fault = (step: string): void => {
    if (seen++ >= armed) throw Object.assign(new Error(`ENOSPC at ${step}`), { code: 'ENOSPC' });
  };
  const q = makeQueue(new FsQueueBackend(dir, { fault }), dir);
  await q.open();
  t.after(() => q.close());
  const [kept] = await submit(q, 'survivor');
  // two concurrent messages, so the failing step may fall in a group of two
  const pair = (tag: string) => Promise.allSettled([submit(q, `a ${tag}`, 2), submit(q, `b ${tag}`, 1)]);
  const baseline = (await collect(q.walk())).map((e) => e.id).sort();
  let i = 0;
  // step i fails (and every later one); past the last step everything succeeds and the loop ends
  for (; i < 200; i++) {
    seen = 0;
    armed = i;
    const results = await pair(String(i));
    armed = Infinity;
    const stored: string[] = [];
    for (const r of results) {
      if (r.status === 'fulfilled') stored.push(...r.value.map((e) => e.id));
      else assert.ok(r.reason instanceof QueueError && r.reason.code === 'full', `step ${i}: ${r.reason}`);
    }
    const now = (await collect(q.walk())).map((e) => e.id).sort();
    assert.deepEqual(now, [...baseline, ...stored].sort(), `step ${i}: exactly the acknowledged envelopes`);
    assert.deepEqual(await readdir(join(dir, 'incoming')), [], `step ${i}: incoming left over`);
    for (const id of stored) await q.remove(id);
    if (results.every((r) => r.status === 'fulfilled')) break;
  }
  assert.ok(i >= 10 && i < 200, `${i} write steps exercised`);
  assert.equal((await q.load(kept!.id))?.id, kept!.id);
});

test('fs: a message dir without its body is set aside at walk; an empty one is cleaned', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const q = makeQueue(new FsQueueBackend(dir), dir);
  await q.open();
  const [a] = await submit(q, 'a');
  const [b] = await submit(q, 'b');
  const { rm } = await import('node:fs/promises');
  await rm(join(msgDir(dir, a!.msgid), 'message'));
  await rm(join(msgDir(dir, b!.msgid), b!.id));
  assert.deepEqual(await collect(q.walk()), []);
  assert.deepEqual(await collect(q.messages()), []);
  assert.equal((await readdir(join(dir, 'corrupt'))).length, 1);
  await q.close();
});
