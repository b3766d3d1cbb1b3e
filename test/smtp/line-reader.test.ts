/** Command-line framing: limits hold for any byte stream and any way it is cut into chunks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LineReader, MAX_COMMAND_LINE, RUNAWAY_LINE } from '../../src/smtp/line-reader.js';

test('CRLF and bare LF end lines (a bare LF is marked, for the session to refuse); partial lines wait for their end', () => {
  const r = new LineReader();
  assert.deepEqual(r.push(Buffer.from('EHLO a\r\nNOOP\nMA')), [{ kind: 'line', line: 'EHLO a' }, { kind: 'line', line: 'NOOP', bareLf: true }]);
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

test('issue 13: no LF within 64 KiB is one runaway event, in any chunking (OpenSMTPD smtp_io: SMTP_LINE_MAX)', () => {
  const whole = new LineReader();
  assert.deepEqual(whole.push(Buffer.alloc(RUNAWAY_LINE + 1, 'x')), [{ kind: 'runaway' }]);
  assert.deepEqual(whole.push(Buffer.alloc(100_000, 'x')), []);
  const pieces = new LineReader();
  const events = [];
  for (let i = 0; i < 70; i++) events.push(...pieces.push(Buffer.alloc(1000, 'x')));
  assert.deepEqual(events, [{ kind: 'runaway' }]);
  assert.equal(pieces.pending(), 0);
  // at the limit it is still a line that may end; past it, where the LF falls changes nothing
  const line = (n: number) => Buffer.concat([Buffer.alloc(n, 'x'), Buffer.from('\nNOOP\r\n')]);
  assert.deepEqual(new LineReader().push(line(RUNAWAY_LINE)), [{ kind: 'too-long' }, { kind: 'line', line: 'NOOP' }]);
  assert.deepEqual(new LineReader().push(line(RUNAWAY_LINE + 1)), [{ kind: 'runaway' }]);
  const split = new LineReader();
  assert.deepEqual([...split.push(Buffer.alloc(RUNAWAY_LINE, 'x')), ...split.push(Buffer.from('x\nNOOP\r\n'))], [{ kind: 'runaway' }]);
});

test('issue 13: a line ended by a bare LF switches no mode (DATA, STARTTLS, BDAT are not acted on)', () => {
  const r = new LineReader();
  assert.deepEqual(r.push(Buffer.from('DATA\nBDAT 3\nabc\r\n')), [
    { kind: 'line', line: 'DATA', bareLf: true }, { kind: 'line', line: 'BDAT 3', bareLf: true }, { kind: 'line', line: 'abc' },
  ]);
  assert.equal(r.mode, 'command');
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
