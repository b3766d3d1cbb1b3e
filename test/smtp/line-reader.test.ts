/** Command-line framing: limits hold for any byte stream and any way it is cut into chunks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LineReader, MAX_COMMAND_LINE } from '../../src/smtp/line-reader.js';

test('CRLF and bare LF end lines; partial lines wait for their end', () => {
  const r = new LineReader();
  assert.deepEqual(r.push(Buffer.from('EHLO a\r\nNOOP\nMA')), [{ kind: 'line', line: 'EHLO a' }, { kind: 'line', line: 'NOOP' }]);
  assert.equal(r.pending(), 2);
  assert.deepEqual(r.push(Buffer.from('IL FROM:<>\r\n')), [{ kind: 'line', line: 'MAIL FROM:<>' }]);
  assert.equal(r.pending(), 0);
});

test('a line over 512 octets is one too-long event and the next line is read normally', () => {
  const r = new LineReader();
  const long = 'X'.repeat(MAX_COMMAND_LINE + 100);
  assert.deepEqual(r.push(Buffer.from(long.slice(0, 300))), []);
  assert.deepEqual(r.push(Buffer.from(long.slice(300))), []);
  assert.deepEqual(r.push(Buffer.from('\r\nNOOP\r\n')), [{ kind: 'too-long' }, { kind: 'line', line: 'NOOP' }]);
  // exactly 512 octets with CRLF is allowed, 513 is not
  assert.deepEqual(r.push(Buffer.from('A'.repeat(510) + '\r\n')), [{ kind: 'line', line: 'A'.repeat(510) }]);
  assert.deepEqual(r.push(Buffer.from('A'.repeat(511) + '\r\n')), [{ kind: 'too-long' }]);
});

test('property: for any bytes in any chunking, the buffer stays bounded and lines are the same', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 4000 }), fc.array(fc.nat(600), { maxLength: 20 }), (bytes, cuts) => {
      const whole = new LineReader().push(Buffer.from(bytes));
      const chunked = new LineReader();
      const events = [];
      let at = 0;
      for (const c of [...cuts, bytes.length]) {
        const end = Math.min(bytes.length, at + c);
        events.push(...chunked.push(Buffer.from(bytes.subarray(at, end))));
        assert.ok(chunked.pending() <= MAX_COMMAND_LINE);
        at = end;
      }
      events.push(...chunked.push(Buffer.from(bytes.subarray(at))));
      assert.deepEqual(events, whole);
      for (const e of events) if (e.kind === 'line') assert.ok(e.line.length < MAX_COMMAND_LINE);
    }),
    { numRuns: 300 },
  );
});
