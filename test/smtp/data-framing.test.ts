/** The framer past command lines: DATA bodies (hold, unstuffing, the CRLF.CRLF end, flags) and BDAT chunks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LineReader, MAX_COMMAND_LINE, type FrameEvent } from '../../src/smtp/line-reader.js';

const b = (s: string) => Buffer.from(s, 'latin1');

/** Plays the session: accepts every DATA (startData) and resumes after STARTTLS. */
function drive(r: LineReader, events: FrameEvent[]): void {
  for (let n = 0; r.held && n < 1000; n++) {
    const last = [...events].reverse().find((e) => e.kind === 'line');
    const verb = last && last.kind === 'line' ? last.line.toUpperCase() : '';
    events.push(...(verb.startsWith('DATA') ? r.startData() : r.resume()));
  }
}

/** Data events merged into one buffer, so events compare whatever the chunking was. */
function merged(events: FrameEvent[]): (FrameEvent | { kind: 'body'; text: string })[] {
  const out: (FrameEvent | { kind: 'body'; text: string })[] = [];
  for (const e of events) {
    const last = out[out.length - 1];
    if (e.kind === 'data' || e.kind === 'chunk') {
      const text = e.data.toString('latin1');
      if (last && last.kind === 'body') last.text += text;
      else out.push({ kind: 'body', text });
    } else out.push(e);
  }
  return out;
}

test('DATA holds framing until the session decides; the body is unstuffed and ends at CRLF.CRLF', () => {
  const r = new LineReader();
  const wire = 'DATA\r\nSubject: x\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n';
  assert.deepEqual(r.push(b(wire)), [{ kind: 'line', line: 'DATA' }]);
  assert.ok(r.held);
  assert.equal(r.pending(), wire.length - 6);
  const events = merged(r.startData());
  const body = 'Subject: x\r\n\r\n.leading dot\r\n';
  assert.deepEqual(events, [
    { kind: 'body', text: body },
    { kind: 'data-end', size: body.length, bareLf: false, bareCr: false, longLine: false },
    { kind: 'line', line: 'QUIT' },
  ]);
  assert.equal(r.held, false);
});

test('a refused DATA resumes command reading with the bytes already received', () => {
  const r = new LineReader();
  assert.deepEqual(r.push(b('DATA\r\nNOOP\r\n')), [{ kind: 'line', line: 'DATA' }]);
  assert.deepEqual(r.push(b('RSET\r\n')), []);
  assert.deepEqual(r.resume(), [{ kind: 'line', line: 'NOOP' }, { kind: 'line', line: 'RSET' }]);
});

test('STARTTLS holds too, and discard drops what was pipelined after it', () => {
  const r = new LineReader();
  assert.deepEqual(r.push(b('STARTTLS\r\nMAIL FROM:<evil@x>\r\n')), [{ kind: 'line', line: 'STARTTLS' }]);
  assert.ok(r.held);
  r.discard();
  assert.equal(r.pending(), 0);
  assert.deepEqual(r.resume(), []);
  assert.deepEqual(r.push(b('EHLO a\r\n')), [{ kind: 'line', line: 'EHLO a' }]);
});

test('only CRLF.CRLF ends the body: bare LF and bare CR forms are data and are flagged', () => {
  for (const [body, flags] of [
    ['a\n.\nb\r\n', { bareLf: true, bareCr: false }],
    ['a\r.\rb\r\n', { bareLf: false, bareCr: true }],
    ['a\r\n.\nb\r\n', { bareLf: true, bareCr: false }],
    ['a\n.\r\nb\r\n', { bareLf: true, bareCr: false }],
  ] as const) {
    const r = new LineReader();
    r.push(b('DATA\r\n'));
    r.startData();
    const events = merged(r.push(b(`${body}.\r\n`)));
    const end = events.find((e) => e.kind === 'data-end');
    assert.ok(end && end.kind === 'data-end', JSON.stringify(body));
    assert.equal(end.bareLf, flags.bareLf, JSON.stringify(body));
    assert.equal(end.bareCr, flags.bareCr, JSON.stringify(body));
    // a dot starting a line that is not the terminator is dropped as stuffing only after CRLF
    const text = events[0]!.kind === 'body' ? events[0].text : '';
    assert.equal(text.length, end.size);
  }
});

test('the end is found across any split of its five octets', () => {
  const wire = 'x\r\n.\r\nNOOP\r\n';
  for (let cut = 0; cut <= wire.length; cut++) {
    const r = new LineReader();
    r.push(b('DATA\r\n'));
    const events = [...r.startData(), ...r.push(b(wire.slice(0, cut))), ...r.push(b(wire.slice(cut)))];
    assert.deepEqual(merged(events), [
      { kind: 'body', text: 'x\r\n' },
      { kind: 'data-end', size: 3, bareLf: false, bareCr: false, longLine: false },
      { kind: 'line', line: 'NOOP' },
    ], `cut at ${cut}`);
  }
});

test('an empty body and a body of one stuffed dot', () => {
  const r = new LineReader();
  r.push(b('DATA\r\n'));
  assert.deepEqual(r.startData(), []);
  assert.deepEqual(r.push(b('.\r\n')), [{ kind: 'data-end', size: 0, bareLf: false, bareCr: false, longLine: false }]);
  r.push(b('DATA\r\n'));
  r.startData();
  assert.deepEqual(merged(r.push(b('..\r\n.\r\n'))), [
    { kind: 'body', text: '.\r\n' },
    { kind: 'data-end', size: 3, bareLf: false, bareCr: false, longLine: false },
  ]);
});

test('longLine: 1000 octets with CRLF are allowed, 1001 are flagged (stuffed dots count)', () => {
  const run = (line: string) => {
    const r = new LineReader();
    r.push(b('DATA\r\n'));
    r.startData();
    const end = r.push(b(`${line}\r\n.\r\n`)).find((e) => e.kind === 'data-end');
    assert.ok(end && end.kind === 'data-end');
    return end.longLine;
  };
  assert.equal(run('a'.repeat(998)), false);
  assert.equal(run('a'.repeat(999)), true);
  assert.equal(run('.' + 'a'.repeat(997)), false);
  assert.equal(run('..' + 'a'.repeat(997)), true);
});

test('BDAT: exactly the announced octets, whatever they contain, then commands again', () => {
  const r = new LineReader();
  const events = r.push(b('BDAT 7\r\n.\r\nQUIT'));
  assert.deepEqual(merged(events), [{ kind: 'line', line: 'BDAT 7' }, { kind: 'body', text: '.\r\nQUIT' }, { kind: 'chunk-end' }]);
  assert.deepEqual(merged(r.push(b('BDAT 0 LAST\r\nNOOP\r\n'))), [{ kind: 'line', line: 'BDAT 0 LAST' }, { kind: 'chunk-end' }, { kind: 'line', line: 'NOOP' }]);
  // a chunk arriving in pieces
  const s = new LineReader();
  assert.deepEqual(merged(s.push(b('bdat 5 last\r\nhe'))), [{ kind: 'line', line: 'bdat 5 last' }, { kind: 'body', text: 'he' }]);
  assert.deepEqual(merged(s.push(b('llo\r\n'))), [{ kind: 'body', text: 'llo' }, { kind: 'chunk-end' }, { kind: 'line', line: '' }]);
  // a size too big to be exact is not a BDAT the framer acts on: the session refuses the line
  const t = new LineReader();
  assert.deepEqual(t.push(b(`BDAT ${'9'.repeat(16)}\r\nNOOP\r\n`)), [{ kind: 'line', line: `BDAT ${'9'.repeat(16)}` }, { kind: 'line', line: 'NOOP' }]);
});

const bodyLine = fc.string({ unit: fc.constantFrom('a', 'b', '.', '.', ' ', '\r', '\n', '\xe9'), maxLength: 12 });

/** The wire form of a body whose lines end in CRLF: every line starting with a dot gets one more. */
function stuff(body: string): string {
  return body.split('\r\n').map((l) => (l.startsWith('.') ? `.${l}` : l)).join('\r\n');
}

test('property: any chunking of a DATA transaction gives the body back, the right flags, and bounded buffers', () => {
  fc.assert(
    fc.property(fc.array(bodyLine, { maxLength: 12 }), fc.array(fc.integer({ min: 1, max: 9 }), { maxLength: 40 }), (lines, cuts) => {
      const body = lines.map((l) => `${l}\r\n`).join('');
      const wire = b(`MAIL FROM:<>\r\nDATA\r\n${stuff(body)}.\r\nBDAT 3 LAST\r\nabcNOOP\r\n`);
      const r = new LineReader();
      const events: FrameEvent[] = [];
      let at = 0;
      for (let i = 0; at < wire.length; i++) {
        const end = Math.min(wire.length, at + (cuts.length ? cuts[i % cuts.length]! : wire.length));
        events.push(...r.push(wire.subarray(at, end)));
        drive(r, events);
        if (!r.held) assert.ok(r.pending() <= MAX_COMMAND_LINE);
        at = end;
      }
      const wireLines = stuff(body).split('\r\n');
      assert.deepEqual(merged(events), [
        { kind: 'line', line: 'MAIL FROM:<>' },
        { kind: 'line', line: 'DATA' },
        ...(body ? [{ kind: 'body', text: body }] : []),
        {
          kind: 'data-end',
          size: Buffer.byteLength(body, 'latin1'),
          bareLf: /(?<!\r)\n/.test(body),
          bareCr: /\r(?!\n)/.test(body),
          longLine: wireLines.some((l) => l.length + 2 > 1000),
        },
        { kind: 'line', line: 'BDAT 3 LAST' },
        { kind: 'body', text: 'abc' },
        { kind: 'chunk-end' },
        { kind: 'line', line: 'NOOP' },
      ]);
    }),
    { numRuns: 1500 },
  );
});

test('property: in DATA mode at most three octets are ever held back', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3000 }), fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 20 }), (bytes, cuts) => {
      const r = new LineReader();
      r.push(b('DATA\r\n'));
      const events = r.startData();
      let at = 0;
      for (let i = 0; at < bytes.length && i < 10_000; i++) {
        const end = Math.min(bytes.length, at + cuts[i % cuts.length]!);
        events.push(...r.push(Buffer.from(bytes.subarray(at, end))));
        drive(r, events);
        assert.ok(r.held || r.pending() <= MAX_COMMAND_LINE);
        if (!events.some((e) => e.kind === 'data-end')) assert.ok(r.pending() <= 3, `pending ${r.pending()}`);
        at = end;
      }
    }),
    { numRuns: 500 },
  );
});
