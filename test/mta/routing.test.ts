/** Pure routing pieces: relay URL parsing, MX ordering (property), route backoff arithmetic, capabilities and xtext. */
import { test } from 'node:test';
import { bufferBody } from '../../src/queue/body-ref.js';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseCapabilities, xtext } from '../../src/mta/capabilities.js';
import { forBackup, orderMx } from '../../src/mta/mx.js';
import { mailCommand, rcptCommand, utf8Refusal } from '../../src/mta/transaction.js';
import { backoffSeconds, RouteTable } from '../../src/mta/route.js';
import { parseRelayUrl } from '../../src/mta/url.js';

test('relay URLs: schemes, default ports, labels, IP literals, and refusals', () => {
  assert.deepEqual(parseRelayUrl('smtp://mx.example.org'), { scheme: 'smtp', host: 'mx.example.org', port: 25 });
  assert.deepEqual(parseRelayUrl('mx.example.org:587'), { scheme: 'smtp', host: 'mx.example.org', port: 587 });
  assert.deepEqual(parseRelayUrl('smtps://lbl@Relay.Example.org'), { scheme: 'smtps', label: 'lbl', host: 'relay.example.org', port: 465 });
  assert.deepEqual(parseRelayUrl('smtp+tls://lbl@[127.0.0.1]:2525'), { scheme: 'smtp+tls', label: 'lbl', host: '127.0.0.1', port: 2525 });
  assert.deepEqual(parseRelayUrl('lmtp://[::1]:24'), { scheme: 'lmtp', host: '::1', port: 24 });
  for (const bad of ['lmtp://host', 'smtp://lbl@host', 'gopher://host', 'smtp://host:0', 'smtp://host:70000', 'smtp://ho st', 'smtp://']) {
    assert.ok('error' in parseRelayUrl(bad), bad);
  }
});

test('MX order: a permutation, preferences never decrease, equals spread by the random source', () => {
  const rec = fc.record({ preference: fc.integer({ min: 0, max: 5 }), exchange: fc.stringMatching(/^[a-z]{1,5}$/) });
  fc.assert(
    fc.property(fc.array(rec, { maxLength: 12 }), fc.double({ min: 0, max: 0.999, noNaN: true }), (raw, r) => {
      const rs = raw.map((x) => ({ preference: x.preference, exchange: x.exchange }));
      const out = orderMx(rs, () => r);
      assert.equal(out.length, rs.length);
      assert.deepEqual([...out].sort((a, b) => a.exchange.localeCompare(b.exchange) || a.preference - b.preference),
        [...rs].sort((a, b) => a.exchange.localeCompare(b.exchange) || a.preference - b.preference));
      for (let i = 1; i < out.length; i++) assert.ok(out[i - 1]!.preference <= out[i]!.preference);
    }),
  );
  const equal = [{ preference: 10, exchange: 'a' }, { preference: 10, exchange: 'b' }];
  const firsts = new Set([0, 0.9].map((r) => orderMx(equal, () => r)[0]!.exchange));
  assert.equal(firsts.size, 2, 'the random source decides among equal preferences');
});

test('route backoff: 15 * penalty² seconds, capped at an hour; success forgives one step', () => {
  assert.deepEqual([1, 2, 3, 20].map(backoffSeconds), [15, 60, 135, 3600]);
  const routes = new RouteTable();
  const t0 = 1_000_000;
  assert.equal(routes.failed('k', t0), t0 + 15_000);
  assert.ok(routes.disabled('k', t0 + 14_999));
  assert.ok(!routes.disabled('k', t0 + 15_000));
  assert.equal(routes.failed('k', t0 + 20_000), t0 + 20_000 + 60_000);
  routes.succeeded('k');
  assert.ok(!routes.disabled('k', t0 + 20_001));
  assert.deepEqual(routes.snapshot().map((r) => r.penalty), [1]);
});

test('EHLO capabilities and xtext', () => {
  const caps = parseCapabilities({ code: 250, lines: ['mx.test hello', 'PIPELINING', 'SIZE 1000', 'auth plain LOGIN', 'DSN', 'STARTTLS', 'SMTPUTF8'] });
  assert.deepEqual({ ...caps, auth: [...caps.auth] }, {
    starttls: true, pipelining: true, dsn: true, smtputf8: true, eightBitMime: false, sizeOffered: true, size: 1000, auth: ['PLAIN', 'LOGIN'],
  });
  assert.equal(parseCapabilities({ code: 250, lines: ['mx', 'SIZE x'] }).size, 0);
  assert.equal(xtext('a+b=c d\u00e9'), 'a+2Bb+3Dc+20d+C3+A9');
});

test('MAIL/RCPT lines: SMTPUTF8 passed on when asked for and offered, never a UTF-8 address without it, forged addresses refused', () => {
  const caps = parseCapabilities({ code: 250, lines: ['mx', 'DSN'] });
  const tx = { sender: 'a@x', rcpts: [{ rcpt: 'b@y', dsn: {} }], smtputf8: true, body: bufferBody(Buffer.alloc(0)) };
  assert.deepEqual(mailCommand(tx, caps, 10), { line: 'MAIL FROM:<a@x>' });
  assert.deepEqual(mailCommand(tx, { ...caps, smtputf8: true }, 10), { line: 'MAIL FROM:<a@x> SMTPUTF8' });
  assert.deepEqual(mailCommand({ ...tx, smtputf8: false }, { ...caps, smtputf8: true }, 10), { line: 'MAIL FROM:<a@x>' });
  const utf8 = { ...tx, rcpts: [{ rcpt: 'bj\u00f6rn@y', dsn: {} }] };
  assert.deepEqual(mailCommand(utf8, caps, 10), utf8Refusal('address'));
  assert.equal((utf8Refusal('address') as { enhanced: string }).enhanced, '5.6.7');
  assert.equal((utf8Refusal('headers') as { enhanced: string }).enhanced, '5.6.9');
  assert.deepEqual(mailCommand(utf8, { ...caps, smtputf8: true }, 10), { line: 'MAIL FROM:<a@x> SMTPUTF8' });
  assert.equal((mailCommand({ ...tx, sender: 'a@x>\r\nRCPT TO:<evil@z' }, caps, 1) as { result: string }).result, 'permfail');
  assert.equal(rcptCommand({ rcpt: 'b@y', dsn: { notify: ['NEVER'], orcpt: 'rfc822;B@y' } }, caps), 'RCPT TO:<b@y> NOTIFY=NEVER ORCPT=rfc822;B@y');
  assert.equal(rcptCommand({ rcpt: 'b@y', dsn: { notify: ['NEVER'] } }, { ...caps, dsn: false }), 'RCPT TO:<b@y>');
});

test('backup MX filter: only better preferences; not listed keeps all', () => {
  const rs = [{ preference: 10, exchange: 'a' }, { preference: 20, exchange: 'me.' }, { preference: 20, exchange: 'b' }];
  assert.deepEqual(forBackup(rs, 'me').map((r) => r.exchange), ['a']);
  assert.equal(forBackup(rs, 'other').length, 3);
});
