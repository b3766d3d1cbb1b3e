/** The reply parser: round trips, any chunking, and the CVE-2020-8794 family of hostile replies. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatReply, MAX_LINE, MAX_LINES, parseReplies, ReplyParser, replyText, type Reply } from '../../src/mta/reply-parser.js';

const word = fc.stringMatching(/^[A-Za-z][A-Za-z0-9 .,:;<>@()_-]{0,40}[A-Za-z0-9]$/);
const reply: fc.Arbitrary<Reply> = fc
  .record({
    code: fc.integer({ min: 200, max: 599 }),
    withEnhanced: fc.boolean(),
    sub: fc.tuple(fc.integer({ min: 0, max: 999 }), fc.integer({ min: 0, max: 999 })),
    lines: fc.array(word, { minLength: 1, maxLength: 8 }),
  })
  .map(({ code, withEnhanced, sub, lines }) => {
    const cls = Math.floor(code / 100);
    const enhanced = withEnhanced && cls !== 3 ? `${cls}.${sub[0]}.${sub[1]}` : undefined;
    return enhanced ? { code, enhanced, lines } : { code, lines };
  });

test('formatted replies parse back to themselves', () => {
  fc.assert(
    fc.property(fc.array(reply, { maxLength: 5 }), (rs) => {
      const out = parseReplies(rs.map(formatReply).join(''));
      assert.equal(out.error, undefined);
      assert.deepEqual(out.replies, rs);
      assert.equal(out.rest, false);
    }),
  );
});

test('any chunking of the stream gives the same replies', () => {
  fc.assert(
    fc.property(fc.array(reply, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 10 }), (rs, cuts) => {
      const wire = rs.map(formatReply).join('');
      const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
      const p = new ReplyParser();
      const got: Reply[] = [];
      let last = 0;
      for (const at of [...points, wire.length]) {
        for (const ev of p.feed(wire.slice(last, at))) if (ev.kind === 'reply') got.push(ev.reply);
        last = at;
      }
      assert.deepEqual(got, rs);
    }),
  );
});

test('arbitrary bytes never throw, and every accepted line is well-formed', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.string(), fc.constantFrom('250-', '250 ', '\r\n', '\n', '550 5.1.1 x')), { maxLength: 30 }), (parts) => {
      const out = parseReplies(parts.join(''));
      for (const r of out.replies) {
        assert.ok(r.code >= 200 && r.code <= 599);
        assert.ok(r.lines.length >= 1 && r.lines.length <= MAX_LINES);
        for (const l of r.lines) assert.doesNotMatch(l, /[\r\n\x00]/);
      }
    }),
  );
});

test('CVE-2020-8794: a continuation line without a code is an error, not a new command', () => {
  const out = parseReplies('250-mx.example\r\n250-PIPELINING\r\nX-injected\r\n250 OK\r\n');
  assert.equal(out.error, 'malformed reply line');
  assert.deepEqual(out.replies, []);
});

test('hostile shapes are protocol errors', () => {
  const cases: [string, string][] = [
    ['250-a\r\n550 b\r\n', 'reply code changed inside a multi-line reply'],
    ['25 ok\r\n', 'malformed reply line'],
    ['2500 ok\r\n', 'malformed reply line'],
    ['250_ok\r\n', 'malformed reply line'],
    ['150 ok\r\n', 'malformed reply line'],
    ['250 a\x00b\r\n', 'control character in reply'],
    ['250 a\rb\r\n', 'control character in reply'],
    [`250 ${'x'.repeat(MAX_LINE + 10)}\r\n`, 'reply line too long'],
    ['250-x\r\n'.repeat(MAX_LINES + 1) + '250 x\r\n', 'too many lines in reply'],
  ];
  for (const [wire, reason] of cases) assert.equal(parseReplies(wire).error, reason, JSON.stringify(wire.slice(0, 40)));
});

test('an endless line without newline is cut off once it passes the limit', () => {
  const p = new ReplyParser();
  let err: string | undefined;
  for (let i = 0; i < 100 && !err; i++) for (const ev of p.feed('2'.repeat(100))) if (ev.kind === 'error') err = ev.reason;
  assert.equal(err, 'reply line too long');
  assert.deepEqual(p.feed('250 ok\r\n'), [], 'a broken parser stays broken');
});

test('enhanced codes: only with the matching class, kept out of the text', () => {
  assert.deepEqual(parseReplies('550 5.1.1 <x@y>: no such user\r\n').replies[0], { code: 550, enhanced: '5.1.1', lines: ['<x@y>: no such user'] });
  assert.deepEqual(parseReplies('550 4.1.1 odd\r\n').replies[0], { code: 550, lines: ['4.1.1 odd'] });
  assert.deepEqual(parseReplies('250\r\n').replies[0], { code: 250, lines: [''] });
  assert.equal(replyText(parseReplies('451-4.3.0 try\r\n451 4.3.0 later\r\n').replies[0]!), '451 4.3.0 try later');
});
