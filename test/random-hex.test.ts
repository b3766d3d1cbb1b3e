/**
 * Ids drawn from the pooled CSPRNG bytes: the asked length in hex whatever the pool's position,
 * never the same bytes twice across refills, and no request larger than the pool.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { randomHex } from '../src/random-hex.js';

test('property: any sequence of sizes gets hex ids of exactly those sizes', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 200 }), (sizes) => {
    for (const n of sizes) assert.match(randomHex(n), new RegExp(`^[0-9a-f]{${2 * n}}$`));
  }));
});

test('20,000 ids of 8 bytes (about 39 refills of the pool) are all distinct', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 20_000; i++) seen.add(randomHex(8));
  assert.equal(seen.size, 20_000);
});

test('more bytes than the pool holds is a programming error', () => {
  assert.throws(() => randomHex(4097), RangeError);
});
