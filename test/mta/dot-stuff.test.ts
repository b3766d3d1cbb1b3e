/** DATA framing: the server-side unstuffing of what we send gives back the body, in any chunking. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DotStuffer, dotStuff } from '../../src/mta/dot-stuff.js';

/** What a receiving server does: split on CRLF up to the lone dot, strip one leading dot. */
function unstuff(wire: string): string | null {
  const end = wire.indexOf('\r\n.\r\n');
  const body = wire.startsWith('.\r\n') ? '' : end < 0 ? null : wire.slice(0, end + 2);
  if (body === null) return null;
  return body.split('\r\n').map((l) => (l.startsWith('.') ? l.slice(1) : l)).join('\r\n');
}

const line = fc.stringMatching(/^[.a-z ]{0,12}$/);
const body = fc.array(line, { maxLength: 10 }).map((ls) => (ls.length ? ls.join('\r\n') + '\r\n' : ''));

test('unstuffing what we send gives back the body, and the first CRLF.CRLF is the end', () => {
  fc.assert(
    fc.property(body, (b) => {
      const wire = dotStuff(Buffer.from(b)).toString('latin1');
      assert.ok(wire.endsWith('.\r\n'));
      assert.equal(unstuff(wire), b);
      const first = wire.startsWith('.\r\n') ? 0 : wire.indexOf('\r\n.\r\n') + 2;
      assert.equal(first, wire.length - 3);
    }),
  );
});

test('chunk boundaries do not change the output', () => {
  fc.assert(
    fc.property(body, fc.array(fc.nat(), { maxLength: 6 }), (b, cuts) => {
      const buf = Buffer.from(b);
      const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((x, y) => x - y);
      const s = new DotStuffer();
      const out: Buffer[] = [];
      let last = 0;
      for (const at of [...points, buf.length]) { out.push(s.push(buf.subarray(last, at))); last = at; }
      out.push(s.end());
      assert.deepEqual(Buffer.concat(out), dotStuff(buf));
    }),
  );
});

test('a body without a final CRLF gets one before the dot', () => {
  assert.equal(dotStuff(Buffer.from('a\r\n.b')).toString(), 'a\r\n..b\r\n.\r\n');
  assert.equal(dotStuff(Buffer.from('.')).toString(), '..\r\n.\r\n');
});
