/** xtext (RFC 3461 §4): every octet string survives a round trip, and the decoder refuses what is not xtext. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeXtext, encodeXtext } from '../../src/smtp/xtext.js';

const XTEXT = /^(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*$/;
const octets = fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 200 }).map((a) => String.fromCharCode(...a));

test('known encodings', () => {
  assert.equal(encodeXtext('user+tag@example.com'), 'user+2Btag@example.com');
  assert.equal(encodeXtext('a=b c'), 'a+3Db+20c');
  assert.equal(encodeXtext('\r\n\x7f'), '+0D+0A+7F');
  assert.equal(encodeXtext(''), '');
  assert.equal(decodeXtext('user+2Btag@example.com'), 'user+tag@example.com');
  assert.equal(decodeXtext('+41+42c'), 'ABc');
  // UTF-8 octets are UTF-8 text (RFC 6533 ORCPT); others stay one character per octet
  assert.equal(decodeXtext('j+C3+B6rg@x'), 'jörg@x');
  assert.equal(encodeXtext('jörg@x'), 'j+C3+B6rg@x');
  assert.equal(decodeXtext('caf+E9'), 'caf\u00e9');
});

test('strict decoding refuses bad escapes, raw specials, spaces and non-ASCII', () => {
  for (const bad of ['+', '+4', '+4G', '+2b', 'a+', 'a b', 'a=b', 'a\tb', '\x7f', 'é', 'a\r\nb', '++41']) {
    assert.equal(decodeXtext(bad), null, JSON.stringify(bad));
  }
});

test('property: decode(encode(s)) is s, and the encoding is xtext', () => {
  fc.assert(
    fc.property(octets, (s) => {
      const enc = encodeXtext(s);
      assert.match(enc, XTEXT);
      assert.equal(decodeXtext(enc), s);
    }),
    { numRuns: 1000 },
  );
});

test('property: decoding never throws and accepts exactly the xtext grammar', () => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom('+', '=', ' ', 'A', 'f', '0', '9', 'z', '\x00', 'é', '~'), maxLength: 30 }), (s) => {
      const d = decodeXtext(s);
      assert.equal(d !== null, XTEXT.test(s), JSON.stringify(s));
    }),
    { numRuns: 2000 },
  );
});
