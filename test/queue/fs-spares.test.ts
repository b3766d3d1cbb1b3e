/** The fs queue keeps delivered messages' files and writes the next messages over them (src/queue/fs-spares.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, fstatSync, linkSync, renameSync, statSync, writeSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FsQueueBackend } from '../../src/queue/fs.js';
import { MAX_SPARE_OCTETS, MAX_SPARES } from '../../src/queue/fs-spares.js';
import type { Queue } from '../../src/queue/queue.js';
import { collect, makeQueue, newEnvelope, submit, tempDir } from './helpers.js';

async function openQueue(t: { after(fn: () => unknown): void }, dir: string): Promise<{ q: Queue; backend: FsQueueBackend }> {
  const backend = new FsQueueBackend(dir);
  const q = makeQueue(backend, dir);
  await q.open();
  t.after(() => q.close());
  return { q, backend };
}

/** Deliver a message: remove every envelope, as the scheduler does once each is done. */
async function deliver(q: Queue, evpids: string[]): Promise<void> {
  await q.remove(evpids);
}

test('fs spares: the next message is written over a delivered one\'s file (same inode), exactly its own octets, the old tail cut', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const { q, backend } = await openQueue(t, dir);
  const long = `Subject: long\r\n\r\n${'x'.repeat(3000)}\r\n`;
  const old = await submit(q, long, 3);
  const inode = statSync(backend.messagePath(old[0]!.msgid)).ino;
  await deliver(q, old.map((e) => e.id));
  assert.deepEqual(await readdir(join(dir, 'queue')), []);
  assert.deepEqual(await readdir(join(dir, 'spare')), [old[0]!.msgid]);

  // written as the queue's incoming writer writes: through the descriptor, from the first octet
  const { msgid, fd } = await q.create();
  assert.equal(fstatSync(fd).ino, inode, 'the spare, not a new file');
  const body = 'Subject: short\r\n\r\nhi\r\n';
  writeSync(fd, body);
  const [e] = await q.commit(msgid, [newEnvelope({ rcpt: 'new@example.org' })], body.length, undefined, fd);
  closeSync(fd);
  assert.deepEqual(await readdir(join(dir, 'spare')), []);

  // a restart reads the file back from disk: the new message only, nothing of the old one
  const again = await openQueue(t, dir);
  assert.deepEqual((await collect(again.q.walk())).map((x) => [x.id, x.rcpt]), [[e!.id, 'new@example.org']]);
  const { path, size } = await again.q.body(msgid);
  assert.equal(size, body.length);
  assert.equal((await readFile(path)).subarray(0, size).toString(), body);
});

test('fs spares: a file that came back from a crash under a new name with an old message\'s bytes is set aside, never delivered', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const { q, backend } = await openQueue(t, dir);
  const old = await submit(q, 'Subject: delivered already\r\n\r\nold\r\n', 2);
  await deliver(q, old.map((e) => e.id));
  const { msgid, fd } = await q.create();
  closeSync(fd);
  // the rename reached the disk, the new octets did not: the file still holds the old message whole
  renameSync(backend.incomingPath(msgid), backend.messagePath(msgid));

  const again = await openQueue(t, dir);
  const seen = await collect(again.backend.walk());
  assert.equal(seen.filter((x) => 'envelope' in x).length, 0, 'nothing to deliver');
  assert.deepEqual(seen.map((x) => ('damaged' in x ? x.reason : 'envelope')), ['envelope of another message', 'envelope of another message']);
});

test('fs spares: a large file is unlinked, and the pool holds at most MAX_SPARES files', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const { q } = await openQueue(t, dir);
  const big = await submit(q, Buffer.alloc(MAX_SPARE_OCTETS + 1, 0x61));
  await deliver(q, [big[0]!.id]);
  assert.deepEqual(await readdir(join(dir, 'spare')), []);

  const many = [];
  for (let i = 0; i < MAX_SPARES + 5; i++) many.push(...(await submit(q, `Subject: ${i}\r\n\r\nbody\r\n`)));
  await deliver(q, many.map((e) => e.id));
  assert.equal((await readdir(join(dir, 'spare'))).length, MAX_SPARES);
  assert.deepEqual(await readdir(join(dir, 'queue')), []);
});

test('fs spares: the pool outlives a restart, and a file not named by a msgid in spare/ is removed', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const { q, backend } = await openQueue(t, dir);
  const old = await submit(q, 'Subject: x\r\n\r\nbody\r\n');
  const inode = statSync(backend.messagePath(old[0]!.msgid)).ino;
  await deliver(q, [old[0]!.id]);
  await q.close();
  await readFile(join(dir, 'spare', old[0]!.msgid));
  await writeFile(join(dir, 'spare', 'stray'), 'x');

  const again = await openQueue(t, dir);
  assert.deepEqual(await readdir(join(dir, 'spare')), [old[0]!.msgid]);
  const { fd } = await again.q.create();
  assert.equal(fstatSync(fd).ino, inode);
  closeSync(fd);
});

test('fs spares: a name in spare/ that is another name of a queued message\'s file is dropped at start, never written over', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const { q, backend } = await openQueue(t, dir);
  const body = 'Subject: queued\r\n\r\nkeep me\r\n';
  const queued = await submit(q, body);
  const msgid = queued[0]!.msgid;
  const before = await readFile(backend.messagePath(msgid));
  await q.close();
  // what a spare name left beside the message it became would look like after a restart
  linkSync(backend.messagePath(msgid), join(dir, 'spare', 'abcdef01'));

  const again = await openQueue(t, dir);
  assert.deepEqual(await readdir(join(dir, 'spare')), []);
  const { fd } = await again.q.create();
  assert.notEqual(fstatSync(fd).ino, statSync(backend.messagePath(msgid)).ino, 'a new file, not the queued message\'s');
  writeSync(fd, 'Subject: new\r\n\r\noverwrite?\r\n');
  closeSync(fd);
  assert.deepEqual(await readFile(backend.messagePath(msgid)), before);
  assert.deepEqual((await collect(again.q.walk())).map((x) => x.id), [queued[0]!.id]);
});

test('fs spares: when spare/ cannot take a file (here a file stands in its place), the delivered message is unlinked and the next one is a new file', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const { q, backend } = await openQueue(t, dir);
  const old = await submit(q, 'Subject: x\r\n\r\nbody\r\n');
  await rm(join(dir, 'spare'), { recursive: true });
  await writeFile(join(dir, 'spare'), 'not a directory');
  await deliver(q, [old[0]!.id]);
  assert.deepEqual(await readdir(join(dir, 'queue')), []);
  const fresh = await submit(q, 'Subject: y\r\n\r\nbody\r\n');
  assert.deepEqual(await readdir(join(dir, 'queue')), [fresh[0]!.msgid]);
  assert.equal(statSync(backend.messagePath(fresh[0]!.msgid)).size > 0, true);
});
