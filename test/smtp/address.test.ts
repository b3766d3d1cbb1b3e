/** RFC 5321 paths as MAIL FROM and RCPT TO take them: what is accepted, what is refused and with which reply. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { addressKey, parseForwardPath, parseReversePath, type PathResult } from '../../src/smtp/address.js';

const ascii = { smtputf8: false };
const utf8 = { smtputf8: true };

function ok(r: PathResult) {
  assert.ok(r.ok, `expected success, got ${JSON.stringify(r)}`);
  return r;
}

function refused(r: PathResult, code: number, enhanced: string): void {
  assert.equal(r.ok, false, `expected a refusal, got ${JSON.stringify(r)}`);
  if (!r.ok) {
    assert.equal(r.reply.code, code);
    assert.equal(r.reply.enhanced, enhanced);
  }
}

test('plain addresses, their parameters and the domain key', () => {
  const r = ok(parseForwardPath('<John.Doe@Example.COM> NOTIFY=NEVER  ORCPT=rfc822;x', ascii));
  assert.deepEqual(r.address, { local: 'John.Doe', domain: 'Example.COM', asciiDomain: 'example.com' });
  assert.equal(r.params, 'NOTIFY=NEVER  ORCPT=rfc822;x');
  assert.equal(addressKey(r.address), 'John.Doe@example.com');
  // a space before `<` is tolerated, as most servers do
  assert.equal(ok(parseReversePath(' <a@b.example>', ascii)).address.local, 'a');
  assert.equal(ok(parseForwardPath("<!#$%&'*+-/=?^_`{|}~@x.example>", ascii)).address.local, "!#$%&'*+-/=?^_`{|}~");
});

test('the null reverse path and the bare postmaster', () => {
  const nul = ok(parseReversePath('<> SIZE=10', ascii));
  assert.deepEqual(nul.address, { local: '', domain: '', asciiDomain: '' });
  assert.equal(nul.params, 'SIZE=10');
  assert.equal(addressKey(nul.address), '');
  refused(parseForwardPath('<>', ascii), 501, '5.5.4');
  const pm = ok(parseForwardPath('<PostMaster>', ascii));
  assert.equal(pm.address.local, 'postmaster');
  assert.equal(addressKey(pm.address), 'postmaster');
  // postmaster without a domain is a forward path only
  refused(parseReversePath('<postmaster>', ascii), 553, '5.1.7');
});

test('quoted local parts keep their quotes and escapes; controls and bare quotes are refused', () => {
  assert.equal(ok(parseForwardPath('<"john doe"@x.example>', ascii)).address.local, '"john doe"');
  assert.equal(ok(parseForwardPath('<"a\\"b@c"@x.example>', ascii)).address.local, '"a\\"b@c"');
  assert.equal(ok(parseForwardPath('<"a>b"@x.example>', ascii)).address.domain, 'x.example');
  refused(parseForwardPath('<"a\x01b"@x.example>', ascii), 553, '5.1.3');
  refused(parseForwardPath('<"a\\\x00"@x.example>', ascii), 553, '5.1.3');
  refused(parseForwardPath('<"unterminated@x.example>', ascii), 501, '5.5.4');
  // a lone quote opens a quoted string that never ends, so the path has no closing bracket
  refused(parseForwardPath('<a"b@x.example>', ascii), 501, '5.5.4');
  refused(parseForwardPath('<a"b"@x.example>', ascii), 553, '5.1.3');
});

test('dot-strings: no leading, trailing or doubled dots, no specials', () => {
  for (const local of ['.a', 'a.', 'a..b', 'a b', 'a(b)', 'a,b', 'a[b', 'a\\b']) {
    refused(parseForwardPath(`<${local}@x.example>`, ascii), 553, '5.1.3');
  }
});

test('domains: LDH labels only, no trailing dot, no empty labels', () => {
  for (const d of ['-x.example', 'x-.example', 'x..example', 'x.example.', 'x_y.example', 'x y', '', `${'a'.repeat(64)}.example`]) {
    refused(parseForwardPath(`<u@${d}>`, ascii), 553, '5.1.3');
  }
  assert.equal(ok(parseForwardPath(`<u@${'a'.repeat(63)}.example>`, ascii)).address.asciiDomain, `${'a'.repeat(63)}.example`);
  refused(parseForwardPath('<u>', ascii), 553, '5.1.3');
  refused(parseForwardPath('<@x.example>', ascii), 553, '5.1.3');
});

test('address literals: IPv4 and IPv6 only, normalised in the key', () => {
  assert.equal(ok(parseForwardPath('<u@[192.0.2.1]>', ascii)).address.asciiDomain, '[192.0.2.1]');
  const v6 = ok(parseForwardPath('<u@[IPv6:2001:DB8::1]>', ascii)).address;
  assert.equal(v6.domain, '[IPv6:2001:DB8::1]');
  assert.equal(v6.asciiDomain, '[ipv6:2001:db8::1]');
  for (const lit of ['[300.0.0.1]', '[1.2.3]', '[2001:db8::1]', '[IPv6:1.2.3.4]', '[tag:anything]', '[]', '[01.2.3.4x]']) {
    refused(parseForwardPath(`<u@${lit}>`, ascii), 553, '5.1.3');
  }
});

test('source routes are refused, with 5.1.7 on MAIL FROM and 5.1.3 on RCPT TO', () => {
  refused(parseForwardPath('<@relay.example:u@x.example>', ascii), 553, '5.1.3');
  refused(parseForwardPath('<@a.example,@b.example:u@x.example>', ascii), 553, '5.1.3');
  refused(parseReversePath('<@a.example:u@x.example>', ascii), 553, '5.1.7');
});

test('syntax errors: missing brackets, junk after the path', () => {
  refused(parseForwardPath('u@x.example', ascii), 501, '5.5.4');
  refused(parseForwardPath('<u@x.example', ascii), 501, '5.5.4');
  refused(parseForwardPath('<u@x.example>SIZE=1', ascii), 501, '5.5.4');
  refused(parseReversePath('', ascii), 501, '5.5.4');
  refused(parseReversePath('<<u@x.example>>', ascii), 501, '5.5.4');
});

test('length limits: 64 octets of local part, 256 of path', () => {
  ok(parseForwardPath(`<${'l'.repeat(64)}@x.example>`, ascii));
  refused(parseForwardPath(`<${'l'.repeat(65)}@x.example>`, ascii), 553, '5.1.3');
  // the local part limit is in octets: 33 two-octet characters are 66 octets
  refused(parseForwardPath(`<${'é'.repeat(33)}@x.example>`, utf8), 553, '5.1.3');
  const domain = Array.from({ length: 4 }, () => 'd'.repeat(61)).join('.'); // 247 octets
  ok(parseForwardPath(`<abcdefgh@${domain}>`, ascii)); // 256 octets
  refused(parseForwardPath(`<abcdefghi@${domain}>`, ascii), 553, '5.1.3');
});

test('non-ASCII needs SMTPUTF8; U-labels and A-labels give one key', () => {
  refused(parseForwardPath('<u@bücher.example>', ascii), 553, '5.6.7');
  refused(parseForwardPath('<jürgen@x.example>', ascii), 553, '5.6.7');
  refused(parseReversePath('<jürgen@x.example>', ascii), 553, '5.6.7');
  const u = ok(parseForwardPath('<u@Bücher.Example>', utf8)).address;
  const a = ok(parseForwardPath('<u@XN--BCHER-KVA.example>', utf8)).address;
  assert.equal(u.domain, 'Bücher.Example');
  assert.equal(u.asciiDomain, 'xn--bcher-kva.example');
  assert.equal(a.asciiDomain, u.asciiDomain);
  assert.equal(ok(parseForwardPath('<用户@例子.广告>', utf8)).address.local, '用户');
  assert.equal(ok(parseForwardPath('<"jürgen x"@x.example>', utf8)).address.local, '"jürgen x"');
  refused(parseForwardPath('<"jürgen x"@x.example>', ascii), 553, '5.6.7');
});

test('property: no string makes either parser throw', () => {
  const anyText = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.string({ unit: fc.constantFrom('<', '>', '@', '"', '\\', '.', ':', ',', '[', ']', ' ', 'a', 'é', '\x00', 'I', 'P', 'v', '6'), maxLength: 60 }),
  );
  fc.assert(
    fc.property(anyText, fc.boolean(), (text, smtputf8) => {
      for (const r of [parseForwardPath(text, { smtputf8 }), parseReversePath(text, { smtputf8 })]) {
        if (r.ok) assert.equal(typeof r.address.asciiDomain, 'string');
        else assert.ok(r.reply.code === 501 || r.reply.code === 553);
      }
    }),
    { numRuns: 2000 },
  );
});

const ATEXT = "abcxyzABCXYZ0189!#$%&'*+-/=?^_`{|}~".split('');
const dotString = fc
  .array(fc.string({ unit: fc.constantFrom(...ATEXT), minLength: 1, maxLength: 10 }), { minLength: 1, maxLength: 4 })
  .map((atoms) => atoms.join('.'));
const label = fc
  .tuple(fc.constantFrom(...'aZ09'.split('')), fc.string({ unit: fc.constantFrom(...'abQ-7'.split('')), maxLength: 20 }), fc.constantFrom(...'bY8'.split('')))
  .map(([a, mid, z]) => a + mid + z);
const domain = fc.array(label, { minLength: 1, maxLength: 4 }).map((ls) => ls.join('.'));

test('property: a generated valid address parses back to itself', () => {
  fc.assert(
    fc.property(dotString, domain, fc.boolean(), (local, dom, smtputf8) => {
      const r = parseForwardPath(`<${local}@${dom}>`, { smtputf8 });
      assert.ok(r.ok, `${local}@${dom}: ${JSON.stringify(r)}`);
      assert.deepEqual(r.address, { local, domain: dom, asciiDomain: dom.toLowerCase() });
      assert.equal(r.params, '');
      const m = parseReversePath(`<${local}@${dom}> BODY=8BITMIME`, { smtputf8 });
      assert.ok(m.ok && m.address.local === local && m.params === 'BODY=8BITMIME');
    }),
    { numRuns: 1000 },
  );
});

test('local socket: a bare local part takes the listener\'s name (smtp_session.c smtp_mailaddr); elsewhere it is refused', () => {
  const local = { smtputf8: false, defaultDomain: 'mx.example.test' };
  assert.deepEqual(ok(parseForwardPath('<bob>', local)).address, { local: 'bob', domain: 'mx.example.test', asciiDomain: 'mx.example.test' });
  assert.equal(addressKey(ok(parseReversePath('<root> BODY=8BITMIME', local)).address), 'root@mx.example.test');
  assert.equal(addressKey(ok(parseForwardPath('<"a b">', local)).address), '"a b"@mx.example.test');
  assert.equal(addressKey(ok(parseForwardPath('<a@b.example>', local)).address), 'a@b.example');
  assert.equal(addressKey(ok(parseReversePath('<>', local)).address), '', 'the null sender stays null');
  refused(parseForwardPath('<"unterminated>', local), 501, '5.5.4');
  refused(parseForwardPath('<bad..dots>', local), 553, '5.1.3');
  refused(parseForwardPath('<bob>', ascii), 553, '5.1.3');
});
