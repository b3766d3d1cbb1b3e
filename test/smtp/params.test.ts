/** ESMTP parameters of MAIL FROM and RCPT TO: each keyword, repeats, unknown ones, and DSN turned off. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseMailParams, parseRcptParams, type ParamResult } from '../../src/smtp/params.js';

const dsn = { dsn: true };
const noDsn = { dsn: false };

function value<T>(r: ParamResult<T>): T {
  assert.ok(r.ok, `expected success, got ${JSON.stringify(r)}`);
  return r.value;
}

function refused<T>(r: ParamResult<T>, code: 501 | 555): void {
  assert.equal(r.ok, false, `expected ${code}, got ${JSON.stringify(r)}`);
  if (!r.ok) {
    assert.equal(r.reply.code, code);
    assert.equal(r.reply.enhanced, '5.5.4');
  }
}

test('MAIL: no parameters', () => {
  assert.deepEqual(value(parseMailParams('', dsn)), { smtputf8: false });
  assert.deepEqual(value(parseMailParams('   ', dsn)), { smtputf8: false });
});

test('MAIL: SIZE', () => {
  assert.equal(value(parseMailParams('SIZE=1000', dsn)).size, 1000);
  assert.equal(value(parseMailParams('size=0', dsn)).size, 0);
  for (const bad of ['SIZE', 'SIZE=', 'SIZE=-1', 'SIZE=1k', 'SIZE=1.5', `SIZE=${'9'.repeat(21)}`]) refused(parseMailParams(bad, dsn), 501);
});

test('MAIL: BODY', () => {
  assert.equal(value(parseMailParams('BODY=8bitmime', dsn)).body, '8BITMIME');
  assert.equal(value(parseMailParams('BODY=7BIT', dsn)).body, '7BIT');
  assert.equal(value(parseMailParams('BODY=BINARYMIME', dsn)).body, 'BINARYMIME');
  refused(parseMailParams('BODY=9BIT', dsn), 501);
  refused(parseMailParams('BODY', dsn), 501);
});

test('MAIL: SMTPUTF8 takes no value', () => {
  assert.equal(value(parseMailParams('SMTPUTF8', dsn)).smtputf8, true);
  refused(parseMailParams('SMTPUTF8=yes', dsn), 501);
});

test('MAIL: RET and ENVID, with DSN on and off', () => {
  const p = value(parseMailParams('RET=hdrs ENVID=QQ+2B314', dsn));
  assert.equal(p.ret, 'HDRS');
  assert.equal(p.envid, 'QQ+314');
  assert.equal(value(parseMailParams('RET=FULL', dsn)).ret, 'FULL');
  refused(parseMailParams('RET=ALL', dsn), 501);
  refused(parseMailParams('RET', dsn), 501);
  refused(parseMailParams('ENVID=a+zz', dsn), 501);
  refused(parseMailParams('ENVID', dsn), 501);
  value(parseMailParams(`ENVID=${'e'.repeat(100)}`, dsn));
  refused(parseMailParams(`ENVID=${'e'.repeat(101)}`, dsn), 501);
  // without DSN on the listener, its keywords are unknown
  refused(parseMailParams('RET=FULL', noDsn), 555);
  refused(parseMailParams('ENVID=x', noDsn), 555);
  assert.equal(value(parseMailParams('SIZE=1', noDsn)).size, 1);
});

test('issue 13: AUTH= and ENVID must be xtext that decodes to no CR, LF or NUL', () => {
  for (const bad of ['AUTH=a+0Db', 'AUTH=a+0Ab', 'AUTH=a+00b', 'AUTH=a+zz', 'ENVID=a+0D+0Ab', 'ENVID=+00', 'ENVID=tab+09']) refused(parseMailParams(bad, dsn), 501);
  value(parseMailParams('AUTH=alice+2Bsub@example.test ENVID=id+2B1', dsn));
});

test('MAIL: AUTH is accepted and ignored, but needs a value', () => {
  assert.deepEqual(value(parseMailParams('AUTH=<>', dsn)), { smtputf8: false });
  refused(parseMailParams('AUTH', dsn), 501);
});

test('MAIL: several parameters together', () => {
  assert.deepEqual(value(parseMailParams('SIZE=10  BODY=8BITMIME SMTPUTF8 RET=FULL ENVID=e1', dsn)), {
    smtputf8: true, size: 10, body: '8BITMIME', ret: 'FULL', envid: 'e1',
  });
});

test('MAIL: unknown keywords 555, malformed or repeated ones 501', () => {
  refused(parseMailParams('FOO=bar', dsn), 555);
  refused(parseMailParams('NOTIFY=NEVER', dsn), 555);
  refused(parseMailParams('SIZE=1 SIZE=2', dsn), 501);
  refused(parseMailParams('SIZE=1 size=1', dsn), 501);
  refused(parseMailParams('-X=1', dsn), 501);
  refused(parseMailParams('=1', dsn), 501);
  refused(parseMailParams('SIZE=1=2', dsn), 501);
  refused(parseMailParams('X=a\x01b', dsn), 501);
  refused(parseMailParams('X=é', dsn), 501);
});

test('RCPT: NOTIFY', () => {
  assert.deepEqual(value(parseRcptParams('NOTIFY=success,Failure', dsn)).notify, ['SUCCESS', 'FAILURE']);
  assert.deepEqual(value(parseRcptParams('NOTIFY=NEVER', dsn)).notify, ['NEVER']);
  assert.deepEqual(value(parseRcptParams('NOTIFY=DELAY', dsn)).notify, ['DELAY']);
  for (const bad of ['NOTIFY', 'NOTIFY=NEVER,SUCCESS', 'NOTIFY=SUCCESS,SUCCESS', 'NOTIFY=SOMETIMES', 'NOTIFY=SUCCESS,', 'NOTIFY=,DELAY']) {
    refused(parseRcptParams(bad, dsn), 501);
  }
});

test('RCPT: ORCPT is xtext-decoded and its type lowercased', () => {
  assert.equal(value(parseRcptParams('ORCPT=RFC822;user+2Btag@example.com', dsn)).orcpt, 'rfc822;user+tag@example.com');
  assert.equal(value(parseRcptParams('ORCPT=utf-8;a;b', dsn)).orcpt, 'utf-8;a;b');
  for (const bad of ['ORCPT', 'ORCPT=nosemicolon', 'ORCPT=;addr', 'ORCPT=rfc822;', 'ORCPT=rfc822;a+0Db', 'ORCPT=rfc822;a+7F', 'ORCPT=rfc822;a+zz', `ORCPT=rfc822;${'a'.repeat(501)}`]) {
    refused(parseRcptParams(bad, dsn), 501);
  }
});

test('RCPT: both DSN keywords, DSN off, unknown and repeated keywords', () => {
  assert.deepEqual(value(parseRcptParams('NOTIFY=FAILURE ORCPT=rfc822;a@b', dsn)), { notify: ['FAILURE'], orcpt: 'rfc822;a@b' });
  assert.deepEqual(value(parseRcptParams('', dsn)), {});
  refused(parseRcptParams('NOTIFY=NEVER', noDsn), 555);
  refused(parseRcptParams('ORCPT=rfc822;a@b', noDsn), 555);
  refused(parseRcptParams('SIZE=10', dsn), 555);
  refused(parseRcptParams('NOTIFY=NEVER NOTIFY=NEVER', dsn), 501);
});

test('property: any parameter text gives a value or a 501/555, never an exception', () => {
  const words = fc.constantFrom('SIZE', 'BODY', 'RET', 'ENVID', 'NOTIFY', 'ORCPT', 'SMTPUTF8', 'AUTH', 'X', '=', ';', ',', '+', ' ', '1', 'é', '\x00', 'NEVER', 'rfc822');
  fc.assert(
    fc.property(fc.oneof(fc.string({ unit: words, maxLength: 20 }), fc.string({ unit: 'binary', maxLength: 100 })), fc.boolean(), (text, on) => {
      for (const r of [parseMailParams(text, { dsn: on }), parseRcptParams(text, { dsn: on })] as ParamResult<unknown>[]) {
        if (!r.ok) assert.ok(r.reply.code === 501 || r.reply.code === 555);
      }
    }),
    { numRuns: 2000 },
  );
});
