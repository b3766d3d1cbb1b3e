/** LMTP codec: destinations, strict multi-line replies, dot-stuffing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  parseDestination, ReplyParser, stuffLine, unstuffLine, LmtpProtocolError, MAX_REPLY_LINE,
} from '../../src/mda/lmtp-codec.js';

test('destinations: unix path, host, host:port, [v6]:port; junk refused', () => {
  assert.deepEqual(parseDestination('/run/dovecot/lmtp'), { kind: 'unix', path: '/run/dovecot/lmtp' });
  assert.deepEqual(parseDestination('localhost'), { kind: 'inet', host: 'localhost', port: 25 });
  assert.deepEqual(parseDestination('127.0.0.1:24'), { kind: 'inet', host: '127.0.0.1', port: 24 });
  assert.deepEqual(parseDestination('[::1]:2424'), { kind: 'inet', host: '::1', port: 2424 });
  assert.deepEqual(parseDestination('[IPv6:::1]'), { kind: 'inet', host: '::1', port: 25 });
  for (const bad of ['', 'host:', 'host:0', 'host:99999', 'host:2x', '[::1', '[::1]x', 'a b:24']) {
    assert.equal(parseDestination(bad), null, bad);
  }
});

test('replies: single, multi-line, split across chunks, enhanced codes', () => {
  const p = new ReplyParser();
  assert.deepEqual(p.push('220 lmtp ready\r\n250-host\r\n250-PIPE'), [{ code: 220, lines: ['lmtp ready'] }]);
  assert.deepEqual(p.push('LINING\r\n250 8BITMIME\r\n'), [{ code: 250, lines: ['host', 'PIPELINING', '8BITMIME'] }]);
  assert.deepEqual(p.push('550 5.1.1 <x@y> User unknown\n'), [{ code: 550, enhanced: '5.1.1', lines: ['5.1.1 <x@y> User unknown'] }]);
});

test('replies: malformed lines and code changes are protocol errors', () => {
  for (const bad of ['hello\r\n', '25 x\r\n', '2500 x\r\n', '250_x\r\n', '099 x\r\n', '250-a\r\n251 b\r\n']) {
    assert.throws(() => new ReplyParser().push(bad), LmtpProtocolError, JSON.stringify(bad));
  }
  assert.throws(() => new ReplyParser().push('250 ' + 'x'.repeat(MAX_REPLY_LINE + 10)), LmtpProtocolError);
  assert.throws(() => new ReplyParser().push('250-x\r\n'.repeat(200)), LmtpProtocolError);
});

test('property: any reply formatted per RFC 5321 parses back, however it is chunked', () => {
  const text = fc.string({ maxLength: 40 }).map((s) => s.replace(/[\r\n]/g, ''));
  fc.assert(fc.property(fc.integer({ min: 200, max: 599 }), fc.array(text, { minLength: 1, maxLength: 5 }), fc.nat(50), (code, lines, cut) => {
    const wire = lines.map((l, i) => `${code}${i < lines.length - 1 ? '-' : ' '}${l}\r\n`).join('');
    const p = new ReplyParser();
    const at = Math.min(cut, wire.length);
    const got = [...p.push(wire.slice(0, at)), ...p.push(wire.slice(at))];
    return got.length === 1 && got[0]!.code === code && JSON.stringify(got[0]!.lines) === JSON.stringify(lines);
  }));
});

test('property: dot-stuffing round-trips and never yields a lone dot line', () => {
  fc.assert(fc.property(fc.string({ maxLength: 30 }).map((s) => s.replace(/[\r\n]/g, '')), (line) => {
    const wire = Buffer.concat(stuffLine(Buffer.from(line, 'latin1'))).toString('latin1');
    const body = wire.slice(0, -2);
    return wire.endsWith('\r\n') && body !== '.' && unstuffLine(body) === line;
  }));
});
