/** The fs backend: the shared suite, plus its layout and a full disk at every write step. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { decodeRecords, parseTrailer, TRAILER_LEN } from '../../src/queue/fs-format.js';
import { recordFromText } from '../../src/queue/record-codec.js';
import { join } from 'node:path';
import { FsQueueBackend } from '../../src/queue/fs.js';
import { QueueError } from '../../src/queue/queue.js';
import { queueBackendSuite } from './conformance.js';
import { collect, makeQueue, submit, tempDir } from './helpers.js';

/** The envelope records and body size of a message file, read as the format says (trailer last). */
async function stored(b: FsQueueBackend, msgid: string): Promise<{ bodySize: number; records: [string, string][] }> {
  const data = await readFile(b.messagePath(msgid));
  const t = parseTrailer(data.subarray(data.length - TRAILER_LEN))!;
  return { bodySize: t.bodySize, records: decodeRecords(data.subarray(t.bodySize, t.bodySize + t.blockSize).toString())! };
}

queueBackendSuite('fs', (spool) => new FsQueueBackend(spool), {
  persistent: true,
  async corruptEnvelope(b, evpid) {
    const fs = b as FsQueueBackend;
    const { records } = await stored(fs, evpid.slice(0, 8));
    await writeFile(fs.sidecarPath(evpid.slice(0, 8)), JSON.stringify(records.map(([id, r]) => [id, id === evpid ? '{"version":9}' : r])));
    fs.forget(evpid.slice(0, 8));
  },
  async rawEnvelope(b, evpid) {
    // the sidecar, once the envelope changed; the block after the body before that
    const fs = b as FsQueueBackend;
    const side = await readFile(fs.sidecarPath(evpid.slice(0, 8)), 'utf8').then(decodeRecords, () => null);
    const text = (side ?? (await stored(fs, evpid.slice(0, 8))).records).find(([id]) => id === evpid)![1];
    const record = recordFromText(text);
    return typeof record === 'string' ? Buffer.from(record) : record;
  },
  async tamperBody(b, msgid) {
    const fs = b as FsQueueBackend;
    const path = fs.messagePath(msgid);
    const data = await readFile(path);
    data[(await stored(fs, msgid)).bodySize >> 1] ^= 0x01;
    await writeFile(path, data);
    fs.forget(msgid);
  },
});

test('fs: one file per message, queue/<msgid>: the body, its envelopes (versioned records), a trailer; one fsync, after the rename', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const backend = new FsQueueBackend(dir);
  const q = makeQueue(backend, dir);
  await q.open();
  const before = backend.durable.fsyncs;
  const envs = await submit(q, 'Subject: x\r\n\r\nbody\r\n', 3);
  assert.equal(backend.durable.fsyncs - before, 1, 'the message file, under its name in queue/');
  const msgid = envs[0]!.msgid;
  assert.deepEqual(await readdir(join(dir, 'queue')), [msgid]);
  const { bodySize, records } = await stored(backend, msgid);
  assert.equal(bodySize, 'Subject: x\r\n\r\nbody\r\n'.length);
  assert.deepEqual(records.map(([id]) => id).sort(), envs.map((e) => e.id).sort());
  assert.equal(JSON.parse(records[0]![1]).version, 1);
  assert.deepEqual(await readdir(join(dir, 'incoming')), [], 'the incoming body is gone after commit');
  // a retry is durable (sidecar fsynced), a delivery is not (a crash may bring it back: a duplicate, never a loss)
  const mark = backend.durable.fsyncs;
  await q.update([{ ...envs[0]!, tries: 1 }]);
  assert.equal(backend.durable.fsyncs - mark, 2, 'sidecar and directory');
  await q.remove([envs[1]!.id]);
  assert.equal(backend.durable.fsyncs - mark, 2, 'no fsync on delete');
  const reopened = new FsQueueBackend(dir);
  const q2 = makeQueue(reopened, dir);
  await q2.open();
  const walked = await collect(q2.walk());
  assert.deepEqual(walked.map((e) => e.id).sort(), [envs[0]!.id, envs[2]!.id].sort());
  assert.equal(walked.find((e) => e.id === envs[0]!.id)!.tries, 1);
  await q2.remove([envs[0]!.id, envs[2]!.id]);
  assert.deepEqual(await readdir(join(dir, 'queue')), [], 'message and sidecar gone with the last envelope');
  await q.close();
  await q2.close();
});

test('fs: a spool in the old layout (queue/<XX>/<msgid>/message + <evpid>) is converted at open, nothing lost', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const q = makeQueue(new FsQueueBackend(dir), dir);
  await q.open();
  const envs = await submit(q, 'Subject: old\r\n\r\nold body\r\n', 2);
  await q.close();
  // rebuild the message as the old layout stored it
  const msgid = envs[0]!.msgid;
  const old = join(dir, 'queue', msgid.slice(0, 2), msgid);
  await mkdir(old, { recursive: true });
  const { bodySize, records } = await stored(new FsQueueBackend(dir), msgid);
  const data = await readFile(join(dir, 'queue', msgid));
  await writeFile(join(old, 'message'), data.subarray(0, bodySize));
  for (const [id, record] of records) await writeFile(join(old, id), record);
  await rm(join(dir, 'queue', msgid));
  const q2 = makeQueue(new FsQueueBackend(dir), dir);
  await q2.open();
  t.after(() => q2.close());
  assert.deepEqual((await collect(q2.walk())).map((e) => e.id).sort(), envs.map((e) => e.id).sort());
  const h = await q2.body(msgid);
  assert.equal((await readFile(h.path)).subarray(0, h.size).toString(), 'Subject: old\r\n\r\nold body\r\n');
  assert.deepEqual(await readdir(join(dir, 'queue')), [msgid], 'the bucket directory is gone');
});

test('fs: the message file is under its name in queue/ when it is fsynced, so the one fsync makes the name durable too', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const seen: string[] = [];
  const fault = (step: string): void => {
    if (step === 'fsync-file') seen.push(...readdirSync(join(dir, 'queue')));
  };
  const q = makeQueue(new FsQueueBackend(dir, { fault }), dir);
  await q.open();
  t.after(() => q.close());
  const [e] = await submit(q, 'Subject: x\r\n\r\nbody\r\n');
  assert.deepEqual(seen, [e!.msgid]);
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
    for (const id of stored) await q.remove([id]);
    if (results.every((r) => r.status === 'fulfilled')) break;
  }
  assert.ok(i >= 5 && i < 200, `${i} write steps exercised`);
  assert.equal((await q.load(kept!.id))?.id, kept!.id);
});

test('fs: a message file cut short is set aside at walk; a sidecar without its message is cleaned', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const q = makeQueue(new FsQueueBackend(dir), dir);
  await q.open();
  const [a] = await submit(q, 'a');
  const [b] = await submit(q, 'b');
  await q.close();
  await truncate(join(dir, 'queue', a!.msgid), 3);
  await rm(join(dir, 'queue', b!.msgid));
  await writeFile(join(dir, 'queue', `${b!.msgid}.env`), '[]');
  const q2 = makeQueue(new FsQueueBackend(dir), dir);
  await q2.open();
  assert.deepEqual(await collect(q2.walk()), []);
  assert.deepEqual(await collect(q2.messages()), []);
  assert.deepEqual(await readdir(join(dir, 'queue')), []);
  assert.equal((await readdir(join(dir, 'corrupt'))).length, 1);
  await q2.close();
});
