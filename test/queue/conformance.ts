/**
 * The behaviour every queue backend must show, run through the Queue front: fs, sqlite and ram
 * each call queueBackendSuite with a factory and the few hooks that reach into their storage.
 */
import { closeSync } from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { QueueBackend } from '../../src/queue/backend.js';
import { QueueError } from '../../src/queue/queue.js';
import { collect, logged, makeQueue, newEnvelope, submit, tempDir } from './helpers.js';

export interface SuiteHooks {
  /** False for ram: reopen then means the same instance, closed and opened again. */
  persistent: boolean;
  /** Overwrite the stored record of `evpid` with garbage. */
  corruptEnvelope(backend: QueueBackend, evpid: string): Promise<void>;
  /** Flip one byte of the stored body of `msgid`. */
  tamperBody(backend: QueueBackend, msgid: string): Promise<void>;
  /** The stored record of `evpid`, as kept. */
  rawEnvelope(backend: QueueBackend, evpid: string): Promise<Buffer>;
}

const KEY1 = '0123456789abcdef0123456789abcdef';
const KEY2 = 'fedcba9876543210fedcba9876543210';

type Make = (spool: string) => QueueBackend;

async function bodyText(q: ReturnType<typeof makeQueue>, msgid: string): Promise<Buffer> {
  const h = await q.body(msgid);
  try {
    // the body is the first h.size octets (the fs queue keeps the envelopes after it)
    return (await readFile(h.path)).subarray(0, h.size);
  } finally {
    await h.release();
  }
}

/** Counts backend.commit calls, to see group commit at work. */
function counting(b: QueueBackend): { backend: QueueBackend; calls: () => number } {
  let n = 0;
  const orig = b.commit.bind(b);
  b.commit = (batch) => {
    n++;
    return orig(batch);
  };
  return { backend: b, calls: () => n };
}

export function queueBackendSuite(name: string, make: Make, hooks: SuiteHooks): void {
  const setup = async (t: { after(fn: () => Promise<void>): void }, opts: Parameters<typeof makeQueue>[2] = {}) => {
    const { dir, cleanup } = await tempDir(`tsmtpd-queue-${name}-`);
    const backend = make(dir);
    const q = makeQueue(backend, dir, opts);
    await q.open();
    t.after(async () => {
      await q.close().catch(() => {});
      await cleanup();
    });
    return { dir, backend, q };
  };

  test(`${name}: create, commit, load, update, walk, delete`, async (t) => {
    const { q } = await setup(t);
    const envs = await submit(q, 'Subject: hi\r\n\r\nbody\r\n', 3);
    assert.equal(envs.length, 3);
    const msgid = envs[0]!.msgid;
    assert.match(msgid, /^[0-9a-f]{8}$/);
    assert.equal(new Set(envs.map((e) => e.id)).size, 3);
    for (const e of envs) assert.ok(e.id.startsWith(msgid));
    assert.deepEqual(await q.load(envs[1]!.id), envs[1]);
    assert.equal((await bodyText(q, msgid)).toString(), 'Subject: hi\r\n\r\nbody\r\n');
    await q.update([{ ...envs[1]!, tries: 2, lastError: "421 try later" }]);
    assert.equal((await q.load(envs[1]!.id))?.tries, 2);
    const walked = await collect(q.walk());
    assert.deepEqual(walked.map((e) => e.id).sort(), envs.map((e) => e.id).sort());
    assert.deepEqual(await collect(q.messages()), [msgid]);
    await q.remove([envs[0]!.id]);
    await q.remove([envs[1]!.id]);
    assert.equal(await q.load(envs[0]!.id), undefined);
    assert.deepEqual(await collect(q.messages()), [msgid]);
    await q.remove([envs[2]!.id]);
    assert.deepEqual(await collect(q.messages()), [], 'the message goes with its last envelope');
    await assert.rejects(q.body(msgid), (e: unknown) => e instanceof QueueError && e.code === 'notfound');
    await assert.rejects(q.update([envs[2]!]), (e: unknown) => e instanceof QueueError && e.code === 'notfound');
  });

  test(`${name}: commit, close, reopen: walk returns every committed envelope`, async (t) => {
    const { dir, backend, q } = await setup(t);
    const all = [];
    for (let i = 0; i < 12; i++) all.push(...(await submit(q, `message ${i}\r\n`, 1 + (i % 3))));
    const { msgid: pendingMsg, path, fd } = await q.create();
    closeSync(fd);
    await writeFile(path, 'never committed');
    await q.close();
    const again = makeQueue(hooks.persistent ? make(dir) : backend, dir);
    await again.open();
    t.after(() => again.close());
    const walked = await collect(again.walk());
    assert.deepEqual(walked.map((e) => e.id).sort(), all.map((e) => e.id).sort());
    assert.deepEqual(walked.sort((a, b) => a.id.localeCompare(b.id)), all.sort((a, b) => a.id.localeCompare(b.id)));
    await assert.rejects(stat(path), 'stale incoming file removed at open');
    assert.ok(!(await collect(again.messages())).includes(pendingMsg));
  });

  test(`${name}: rollback leaves nothing`, async (t) => {
    const { q } = await setup(t);
    const { msgid, path, fd } = await q.create();
  closeSync(fd);
    await writeFile(path, 'abandoned');
    await q.rollback(msgid);
    await assert.rejects(stat(path));
    assert.deepEqual(await collect(q.messages()), []);
    assert.deepEqual(await collect(q.walk()), []);
    await assert.rejects(q.commit(msgid, [newEnvelope()], 9), QueueError, 'a rolled-back message cannot be committed');
    assert.deepEqual(await collect(q.messages()), []);
  });

  test(`${name}: concurrent commits are grouped into fewer backend commits`, async (t) => {
    const { dir, cleanup } = await tempDir(`tsmtpd-queue-${name}-`);
    t.after(cleanup);
    const c = counting(make(dir));
    const q = makeQueue(c.backend, dir);
    await q.open();
    t.after(() => q.close());
    const n = 20;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => submit(q, `m${i}\r\n`, 2)));
    assert.equal(results.length, n);
    assert.ok(c.calls() < n, `backend.commit called ${c.calls()} times for ${n} messages`);
    assert.equal((await collect(q.walk())).length, 2 * n);
    for (const [i, r] of results.entries()) assert.equal((await bodyText(q, r[0]!.msgid)).toString(), `m${i}\r\n`);
  });

  test(`${name}: a damaged record is set aside and logged, the rest still walks`, async (t) => {
    const { backend, q } = await setup(t);
    const good = await submit(q, 'good\r\n', 2);
    const bad = await submit(q, 'bad\r\n', 1);
    await hooks.corruptEnvelope(backend, bad[0]!.id);
    const before = logged.length;
    const walked = await collect(q.walk());
    assert.deepEqual(walked.map((e) => e.id).sort(), good.map((e) => e.id).sort());
    assert.ok(logged.slice(before).some((l) => l.startsWith(`${bad[0]!.id} queue queue-damaged`)));
    assert.equal(await q.load(bad[0]!.id), undefined);
    assert.deepEqual(await collect(q.walk()).then((w) => w.length), 2, 'set aside: not reported twice');
  });

  test(`${name}: compression + encryption round trip, large and empty bodies`, async (t) => {
    const { q } = await setup(t, { compression: true, encryptionKey: KEY1 });
    const big = randomBytes(300 * 1024);
    const a = await submit(q, big);
    const b = await submit(q, '');
    assert.deepEqual(await bodyText(q, a[0]!.msgid), big);
    assert.equal((await bodyText(q, b[0]!.msgid)).length, 0);
  });

  test(`${name}: a tampered encrypted body fails to open with a clear error`, async (t) => {
    const { dir, backend, q } = await setup(t, { encryptionKey: KEY1 });
    const envs = await submit(q, 'Subject: secret\r\n\r\nsecret body\r\n');
    await hooks.tamperBody(backend, envs[0]!.msgid);
    await assert.rejects(q.body(envs[0]!.msgid), (e: unknown) => e instanceof QueueError && /authentication/.test(e.message));
    const envs2 = await submit(q, 'other\r\n');
    const wrongKey = makeQueue(backend, dir, { encryptionKey: KEY2 });
    await wrongKey.open();
    await assert.rejects(wrongKey.body(envs2[0]!.msgid), /authentication/);
  });

  // queue_backend.c queue_envelope_dump_buffer(): envelopes are compressed then encrypted like bodies
  for (const compression of [false, true]) {
    test(`${name}: with queue encryption${compression ? ' and compression' : ''} envelope records are sealed as crypto_encrypt_buffer() seals them`, async (t) => {
      const { dir, backend, q } = await setup(t, { compression, encryptionKey: KEY1 });
      const [e] = await submit(q, 'Subject: x\r\n\r\nx\r\n', 1);
      await q.update([{ ...e!, tries: 3 }]);
      const raw = await hooks.rawEnvelope(backend, e!.id);
      assert.equal(raw[0], 0x01, 'API_VERSION first');
      for (const secret of ['r0@example.org', 'alice@example.net', 'client.example.net']) assert.ok(!raw.includes(secret), `${secret} stored in clear`);
      // version, 12-octet IV, ciphertext, 16-octet tag: decryptable with the key as written
      const { createDecipheriv } = await import('node:crypto');
      const { gunzipSync } = await import('node:zlib');
      const d = createDecipheriv('aes-256-gcm', Buffer.from(KEY1), raw.subarray(1, 13));
      d.setAuthTag(raw.subarray(raw.length - 16));
      let plain = Buffer.concat([d.update(raw.subarray(13, raw.length - 16)), d.final()]);
      if (compression) plain = gunzipSync(plain);
      assert.equal(JSON.parse(plain.toString()).rcpt, 'r0@example.org');
      assert.equal((await q.load(e!.id))?.tries, 3);
      assert.deepEqual((await collect(q.walk())).map((x) => x.id), [e!.id]);
      makeQueue(backend, dir, { compression, encryptionKey: KEY2 });
      assert.equal(await backend.loadEnvelope(e!.id), undefined, 'another key cannot read it');
    });
  }

  test(`${name}: a queue key of any other length than 32 octets is refused (crypto_setup)`, async (t) => {
    const { dir, backend } = await setup(t);
    assert.throws(() => makeQueue(backend, dir, { encryptionKey: 'correct horse battery staple' }), /invalid key for queue encryption/);
    assert.throws(() => makeQueue(backend, dir, { encryptionKey: `${KEY1}x` }), /invalid key for queue encryption/);
  });

  test(`${name}: inject stores a file the daemon made; bad ids are refused, not thrown deep`, async (t) => {
    const { dir, q } = await setup(t, { compression: true });
    const src = `${dir}/bounce.eml`;
    await writeFile(src, 'From: MAILER-DAEMON\r\n\r\nbounce\r\n');
    const envs = await q.inject(src, [newEnvelope({ kind: 'bounce', sender: '' })]);
    assert.equal((await bodyText(q, envs[0]!.msgid)).toString(), 'From: MAILER-DAEMON\r\n\r\nbounce\r\n');
    assert.equal(await q.load('../../etc/passwd'), undefined);
    await q.remove(['zz']);
    await assert.rejects(q.body('../x'), QueueError);
    await assert.rejects(q.commit('nothex!!', [newEnvelope()], 0), QueueError);
  });

  test(`${name}: a body of any other length than the one written is never committed (issue 13)`, async (t) => {
    const { dir, backend, q } = await setup(t, { compression: true });
    const [kept] = await submit(q, 'survivor');
    const body = 'Subject: short write\r\n\r\nbody\r\n';
    for (const claimed of [body.length - 1, body.length + 1]) {
      // through the front, as the smtp role commits
      const a = await q.create();
      closeSync(a.fd);
      await writeFile(a.path, body);
      await assert.rejects(q.commit(a.msgid, [newEnvelope()], claimed), (e: unknown) => e instanceof QueueError && e.code === 'io' && /octets stored/.test(e.message));
      // and the backend's own check, on whatever the front hands it
      const b = await q.create();
      closeSync(b.fd);
      await writeFile(b.path, body);
      const item = { msgid: b.msgid, envelopes: [{ ...newEnvelope(), id: `${b.msgid}00000001`, msgid: b.msgid }], size: claimed };
      await assert.rejects(backend.commit([item]), (e: unknown) => e instanceof QueueError && /octets stored/.test(e.message));
      await q.rollback(b.msgid);
    }
    assert.deepEqual(await collect(q.messages()), [kept!.msgid]);
    assert.deepEqual((await collect(q.walk())).map((e) => e.id), [kept!.id]);
    assert.deepEqual(await readdir(join(dir, 'incoming')), []);
  });

  test(`${name}: a message committed twice at once is stored once`, async (t) => {
    const { q } = await setup(t);
    const { msgid, path, fd } = await q.create();
  closeSync(fd);
    await writeFile(path, 'once');
    const r = await Promise.allSettled([q.commit(msgid, [newEnvelope()], 4), q.commit(msgid, [newEnvelope()], 4)]);
    assert.deepEqual(r.map((x) => x.status).sort(), ['fulfilled', 'rejected']);
    assert.equal((await collect(q.walk())).length, 1);
    assert.equal((await bodyText(q, msgid)).toString(), 'once');
  });
}
