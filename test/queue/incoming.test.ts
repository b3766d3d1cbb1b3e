/**
 * A body under reception passes a failed write on (issue 13): a disk that refuses the bytes
 * (/dev/full answers every write with ENOSPC, as a full filesystem does) makes the queue's
 * finish() reject, so the transaction ends in 451/452 and never in a 250 for a message the queue
 * file does not hold. On the smtp side, a chunk the queue refused makes the writer's finish()
 * reject too. And a body belongs to the worker that created it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Endpoint } from '../../src/bus/bus.js';
import { IncomingBodies } from '../../src/queue/incoming.js';
import { MessageWriter } from '../../src/smtp/message-writer.js';

const NO_DEV_FULL = existsSync('/dev/full') ? false : 'no /dev/full on this system';

test('a write refused by a full disk makes finish() reject with ENOSPC', { skip: NO_DEV_FULL }, async () => {
  const bodies = new IncomingBodies();
  bodies.open('0a0b0c0d', openSync('/dev/full', 'r+'), 'smtp.1');
  await assert.rejects(bodies.write('0a0b0c0d', 'smtp.1', Buffer.alloc(64 * 1024, 0x61)), (err: NodeJS.ErrnoException) => err.code === 'ENOSPC');
  await assert.rejects(bodies.finish('0a0b0c0d', 'smtp.1', Buffer.from('tail')), (err: NodeJS.ErrnoException) => err.code === 'ENOSPC');
});

test('chunks land in order and finish() counts every octet; another worker cannot touch the body', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-incoming-'));
  const path = join(dir, 'body');
  const bodies = new IncomingBodies();
  bodies.open('0a0b0c0d', openSync(path, 'wx'), 'smtp.1');
  const writes = ['one ', 'two ', 'three '].map((w) => bodies.write('0a0b0c0d', 'smtp.1', Buffer.from(w)));
  assert.throws(() => bodies.write('0a0b0c0d', 'smtp.2', Buffer.from('forged')), /no message 0a0b0c0d under reception for smtp\.2/);
  assert.equal(await bodies.drop('0a0b0c0d', 'smtp.2'), false);
  await Promise.all(writes);
  const { written, fd } = await bodies.finish('0a0b0c0d', 'smtp.1', Buffer.from('end'));
  closeSync(fd);
  assert.equal(written, 17);
  assert.equal(await readFile(path, 'utf8'), 'one two three end');
});

test('a chunk the queue refused makes the smtp writer\'s finish() reject', async () => {
  let calls = 0;
  const bus = {
    request: async () => {
      calls++;
      throw new Error('insufficient storage');
    },
    notify: () => undefined,
  } as unknown as Endpoint;
  const w = new MessageWriter(bus, '0a0b0c0d');
  for (let i = 0; i < 2; i++) w.write(Buffer.alloc(64 * 1024, 0x61));
  await assert.rejects(w.finish(), /insufficient storage/);
  assert.equal(calls, 2);
});
