/**
 * Bodies kept from commit to delivery (issue 18): a kept body goes when its last envelope has
 * left, the oldest go first when the budget is spent, and a reused msgid never finds the body of
 * the message that had it before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BodyCache } from '../../src/queue/body-cache.js';
import { INLINE_MAX } from '../../src/queue/body-readers.js';

test('a body is kept until each of its envelopes is delivered or failed for good', () => {
  const cache = new BodyCache(1024);
  cache.set('0a000001', Buffer.from('body one'), 2);
  cache.settle('0a000001', 1);
  assert.equal(cache.get('0a000001')?.toString(), 'body one');
  cache.settle('0a000001', 1);
  assert.equal(cache.get('0a000001'), undefined);
  assert.equal(cache.size, 0);
});

test('past its budget the cache lets the oldest bodies go; one too big is never kept', () => {
  const cache = new BodyCache(100);
  cache.set('0a000001', Buffer.alloc(40), 1);
  cache.set('0a000002', Buffer.alloc(40), 1);
  cache.set('0a000003', Buffer.alloc(40), 1);
  assert.equal(cache.get('0a000001'), undefined);
  assert.ok(cache.get('0a000002') && cache.get('0a000003'));
  assert.equal(cache.size, 80);
  cache.set('0a000004', Buffer.alloc(101), 1);
  assert.equal(cache.get('0a000004'), undefined);
  const big = new BodyCache(4 * INLINE_MAX);
  big.set('0a000005', Buffer.alloc(INLINE_MAX + 1), 1);
  assert.equal(big.get('0a000005'), undefined, 'a body that would not travel inline is read from the file');
});

test('a msgid set again replaces what an unsettled removal left', () => {
  const cache = new BodyCache(1024);
  cache.set('0a000001', Buffer.from('old message, removed by tsmtpctl'), 1);
  cache.delete('0a000001');
  cache.set('0a000001', Buffer.from('new'), 1);
  assert.equal(cache.get('0a000001')?.toString(), 'new');
  assert.equal(cache.size, 3);
});
