/** The ram stat backend keeps labelled series created on the fly. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RamStat } from '../../src/stat/ram.js';
import { createStatBackend } from '../../src/stat/registry.js';

test('counters with labels are separate series, created on first use', () => {
  const s = new RamStat();
  s.increment('mta.delivery', { domain: 'a.example' }, 1);
  s.increment('mta.delivery', { domain: 'b.example' }, 1);
  s.increment('mta.delivery', { domain: 'a.example' }, 2);
  s.increment('smtp.session', {}, 1);
  assert.deepEqual(
    s.iterate().map((v) => [v.key, v.labels, v.value, v.kind]),
    [
      ['mta.delivery', { domain: 'a.example' }, 3, 'counter'],
      ['mta.delivery', { domain: 'b.example' }, 1, 'counter'],
      ['smtp.session', {}, 1, 'counter'],
    ],
  );
});

test('decrement and set make a gauge; label order does not matter', () => {
  const s = new RamStat();
  s.increment('smtp.session.active', { l: '1', a: '2' }, 3);
  s.decrement('smtp.session.active', { a: '2', l: '1' }, 1);
  s.set('queue.envelopes', {}, 42);
  const all = s.iterate();
  assert.equal(all.length, 2);
  assert.deepEqual(all.find((v) => v.key === 'smtp.session.active'), { key: 'smtp.session.active', labels: { a: '2', l: '1' }, value: 2, kind: 'gauge' });
  assert.equal(all.find((v) => v.key === 'queue.envelopes')?.value, 42);
});

test('an unknown backend name is refused by the registry', () => {
  assert.throws(() => createStatBackend('nosuch'), /unknown stat backend: nosuch/);
  assert.ok(createStatBackend('ram') instanceof RamStat);
});
