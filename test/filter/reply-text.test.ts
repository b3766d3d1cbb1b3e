/** Builtin and module filter reply texts become wire replies as smtpd's valid_smtp_response() allows. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { INVALID_FILTER_REPLY, replyOf } from '../../src/filter/builtin.js';

test('a 4xx/5xx code, a space, an optional enhanced code and the text', () => {
  assert.deepEqual(replyOf('550 5.7.1 go away'), { code: 550, enhanced: '5.7.1', text: 'go away' });
  assert.deepEqual(replyOf('451 try later'), { code: 451, enhanced: '4.7.1', text: 'try later' });
  assert.deepEqual(replyOf('554 5.7.1'), { code: 554, enhanced: '5.7.1', text: 'Rejected' });
});

test('anything else is 421 Internal server error, as smtp_session.c answers it', () => {
  for (const text of ['550. Rejected. No rDNS.', '550-no', 'go away', '250 ok', '55 x', '550', '']) {
    assert.deepEqual(replyOf(text), INVALID_FILTER_REPLY, text);
  }
});

test('property: every text gives a 4xx/5xx reply without CR or LF', () => {
  fc.assert(fc.property(fc.string({ maxLength: 80 }), (text) => {
    const r = replyOf(text);
    assert.ok(r.code >= 400 && r.code < 600);
    assert.doesNotMatch(r.text, /[\r\n]/);
  }), { numRuns: 2000 });
});
