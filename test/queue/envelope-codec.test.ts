/** The envelope record codec: round trips, and anything else is a reason, never a throw. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeEnvelope, encodeEnvelope } from '../../src/queue/envelope-codec.js';
import type { Envelope } from '../../src/queue/envelope.js';
import { createQueueBackend, queueBackendNames } from '../../src/queue/registry.js';
import { fullEnvelope } from './helpers.js';

const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));

const arbEnvelope: fc.Arbitrary<Envelope> = fc
  .record({
    msgid: hex(8), tail: hex(8), kind: fc.constantFrom('mda' as const, 'mta' as const, 'bounce' as const),
    action: fc.string(), tag: fc.option(fc.string(), { nil: undefined }), sender: fc.string(), rcpt: fc.string({ unit: 'grapheme' }),
    smtputf8: fc.boolean(), tries: fc.nat(), createdAt: fc.integer(), lastError: fc.option(fc.string(), { nil: undefined }),
    notify: fc.option(fc.subarray(['SUCCESS', 'FAILURE', 'DELAY'] as const), { nil: undefined }),
    user: fc.option(fc.record({ username: fc.string(), uid: fc.nat(), gid: fc.nat(), directory: fc.string() }), { nil: undefined }),
  })
  .map((r) => {
    const e = fullEnvelope({ id: r.msgid + r.tail, msgid: r.msgid, kind: r.kind, action: r.action, sender: r.sender,
      rcpt: r.rcpt, smtputf8: r.smtputf8, tries: r.tries, createdAt: r.createdAt, dsn: {} });
    if (r.tag !== undefined) e.tag = r.tag;
    if (r.lastError !== undefined) e.lastError = r.lastError;
    if (r.notify !== undefined) e.dsn.notify = [...r.notify];
    if (r.user !== undefined) e.user = { ...r.user };
    return e;
  });

test('property: every envelope survives encode then decode unchanged', () => {
  fc.assert(fc.property(arbEnvelope, (e) => {
    const d = decodeEnvelope(encodeEnvelope(e), e.id);
    assert.ok(d.ok, d.ok ? '' : d.reason);
    assert.deepEqual(d.envelope, e);
  }), { numRuns: 500 });
});

test('property: arbitrary text and JSON (even claiming version 1) decode to a value, never a throw', () => {
  fc.assert(fc.property(fc.string({ maxLength: 300 }), (s) => void decodeEnvelope(s)), { numRuns: 1000 });
  fc.assert(fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (o) => {
    const d = decodeEnvelope(JSON.stringify({ ...o, version: 1 }));
    assert.equal(typeof d.ok, 'boolean');
  }), { numRuns: 1000 });
});

test('property: dropping or retyping any required field is rejected', () => {
  const base = JSON.parse(encodeEnvelope(fullEnvelope())) as Record<string, unknown>;
  const keys = Object.keys(base).filter((k) => k !== 'version');
  fc.assert(fc.property(fc.constantFrom(...keys), fc.constantFrom(undefined, null, 7, 'x', [], {}), (k, v) => {
    const rec = { ...base, [k]: v };
    const d = decodeEnvelope(JSON.stringify(rec));
    if (d.ok) assert.deepEqual(JSON.parse(encodeEnvelope(d.envelope)), JSON.parse(JSON.stringify(rec)), `accepted ${k}=${JSON.stringify(v)}`);
  }), { numRuns: 300 });
});

test('unknown versions, mismatched ids and garbage are rejected with a reason', () => {
  const e = fullEnvelope();
  const rec = JSON.parse(encodeEnvelope(e));
  assert.deepEqual(decodeEnvelope(JSON.stringify({ ...rec, version: 2 })), { ok: false, reason: 'unknown version 2' });
  assert.equal(decodeEnvelope(encodeEnvelope(e), 'ffffffffffffffff').ok, false);
  assert.equal(decodeEnvelope(JSON.stringify({ ...rec, msgid: 'deadbeef' })).ok, false);
  assert.equal(decodeEnvelope('\u0000\u0001').ok, false);
  assert.equal(decodeEnvelope('[1]').ok, false);
  assert.equal(decodeEnvelope(JSON.stringify({ ...rec, kind: 'other' })).ok, false);
});

test('registry: fs, ram and sqlite are known; an unknown name throws', () => {
  assert.deepEqual(queueBackendNames(), ['fs', 'postgres', 'ram', 'sqlite']);
  for (const n of queueBackendNames()) assert.equal(createQueueBackend(n, '/nonexistent').name, n);
  assert.throws(() => createQueueBackend('proc', '/x'), /unknown queue backend "proc"/);
  assert.throws(() => createQueueBackend('__proto__', '/x'), /unknown queue backend/);
});
