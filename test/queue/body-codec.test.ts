/** Body compression and encryption: every combination round trips; damage is a clear QueueError. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QueueError } from '../../src/queue/backend.js';
import { decodeBody, encodeBody, type BodyCodec } from '../../src/queue/body-codec.js';
import { queueKey } from '../../src/queue/crypto.js';
import { tempDir } from './helpers.js';

test('property: any bytes round trip through every codec combination', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const key = queueKey('0123456789abcdef0123456789abcdef');
  const codecs: BodyCodec[] = [{ compress: false }, { compress: true }, { compress: false, key }, { compress: true, key }];
  let n = 0;
  await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 70_000 }), fc.constantFrom(...codecs), async (bytes, codec) => {
    const [src, enc, dec] = ['s', 'e', 'd'].map((x) => join(dir, `${x}${n}`));
    n++;
    await writeFile(src!, bytes);
    await encodeBody(src!, enc!, codec);
    await decodeBody(enc!, dec!, codec);
    assert.deepEqual(new Uint8Array(await readFile(dec!)), bytes);
    if (codec.key) assert.equal((await readFile(enc!))[0], 0x01, 'version byte');
    await Promise.all([src, enc, dec].map((p) => rm(p!, { force: true })));
  }), { numRuns: 60 });
});

test('a truncated or foreign encrypted body and broken gzip fail clearly and leave no output', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const key = queueKey('0123456789abcdef0123456789abcdef');
  await writeFile(join(dir, 'src'), 'Subject: x\r\n\r\nhello\r\n');
  await encodeBody(join(dir, 'src'), join(dir, 'enc'), { compress: true, key });
  await truncate(join(dir, 'enc'), 20);
  await assert.rejects(decodeBody(join(dir, 'enc'), join(dir, 'out1'), { compress: true, key }),
    (e: unknown) => e instanceof QueueError && /authentication/.test(e.message));
  await writeFile(join(dir, 'tiny'), 'x');
  await assert.rejects(decodeBody(join(dir, 'tiny'), join(dir, 'out2'), { compress: false, key }), /too short/);
  await writeFile(join(dir, 'gz'), 'not gzip at all');
  await assert.rejects(decodeBody(join(dir, 'gz'), join(dir, 'out3'), { compress: true }), /not valid gzip/);
  assert.deepEqual((await readdir(dir)).filter((f) => f.startsWith('out')), []);
});

test('an encrypted body is crypto_encrypt_file()\'s format under the key as written (crypto_setup copies it, no derivation)', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const written = '0123456789abcdef0123456789abcdef';
  await writeFile(join(dir, 'src'), 'Subject: x\r\n\r\nhello\r\n');
  await encodeBody(join(dir, 'src'), join(dir, 'enc'), { compress: false, key: queueKey(written) });
  const raw = await readFile(join(dir, 'enc'));
  const { createDecipheriv } = await import('node:crypto');
  const d = createDecipheriv('aes-256-gcm', Buffer.from(written, 'latin1'), raw.subarray(1, 13));
  d.setAuthTag(raw.subarray(raw.length - 16));
  assert.equal(Buffer.concat([d.update(raw.subarray(13, raw.length - 16)), d.final()]).toString(), 'Subject: x\r\n\r\nhello\r\n');
  assert.throws(() => queueKey('short'), /invalid key for queue encryption/);
});
