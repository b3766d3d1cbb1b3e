/**
 * The body writer passes a failed write on: a disk that refuses the bytes (/dev/full answers
 * every write with ENOSPC, as a full filesystem does) makes finish() reject, so the transaction
 * ends in 451 and never in a 250 for a message the queue file does not hold (issue 13).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { MessageWriter } from '../../src/smtp/message-writer.js';

const NO_DEV_FULL = existsSync('/dev/full') ? false : 'no /dev/full on this system';

test('a write refused by a full disk makes finish() reject with ENOSPC', { skip: NO_DEV_FULL }, async () => {
  const w = new MessageWriter('/dev/full');
  for (let i = 0; i < 16; i++) w.write(Buffer.alloc(64 * 1024, 0x61));
  await assert.rejects(w.finish(), (err: NodeJS.ErrnoException) => err.code === 'ENOSPC');
});

test('a write refused after the writer drained still fails finish()', { skip: NO_DEV_FULL }, async () => {
  const w = new MessageWriter('/dev/full');
  w.write('Received: by test\r\n');
  await w.drained();
  w.write('Subject: x\r\n\r\nbody\r\n');
  await assert.rejects(w.finish(), (err: NodeJS.ErrnoException) => err.code === 'ENOSPC');
});
