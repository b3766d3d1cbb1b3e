/** The streaming header changes: Bcc out, To/Cc/From completed, hop counts, Message-ID/Date insertion before the blank line, chunking independence. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { appendDomain } from '../../src/smtp/header-domain.js';
import { HeaderScan, type HeaderChanges } from '../../src/smtp/header-scan.js';

const ADD = (m: { messageId: boolean; date: boolean }) => `${m.messageId ? 'Message-ID: <new@test>\r\n' : ''}${m.date ? 'Date: now\r\n' : ''}`;

type Adder = HeaderChanges['addHeaders'];

/** Run a message through a scanner in the given pieces; the output text and the hop count. */
function scan(pieces: string[], add: Adder = ADD) {
  const s = new HeaderScan({ addHeaders: add, domain: 'mx.test' });
  const out: Buffer[] = [];
  for (const p of pieces) out.push(...s.push(Buffer.from(p, 'latin1')));
  out.push(...s.end());
  return { text: Buffer.concat(out).toString('latin1'), hops: s.hops };
}

test('Received headers are counted in the header section only, case-blind', () => {
  const msg = 'Received: a\r\nreceived: b\r\n\tfolded\r\nRECEIVED:c\r\nX-Received: no\r\nSubject: s\r\n\r\nReceived: in the body\r\n';
  const r = scan([msg], null);
  assert.equal(r.hops, 3);
  assert.equal(r.text, msg);
});

test('missing Message-ID and Date go just before the blank line', () => {
  const r = scan(['Subject: s\r\nFrom: a@b\r\n\r\nbody\r\n']);
  assert.equal(r.text, 'Subject: s\r\nFrom: a@b\r\nMessage-ID: <new@test>\r\nDate: now\r\n\r\nbody\r\n');
  // a bare-LF blank line is a blank line too
  assert.equal(scan(['Subject: s\n\nbody\n']).text, 'Subject: s\nMessage-ID: <new@test>\r\nDate: now\r\n\nbody\n');
});

test('only what is missing is asked for, and nothing when both are there', () => {
  const asked: { messageId: boolean; date: boolean }[] = [];
  const add = (m: { messageId: boolean; date: boolean }) => {
    asked.push(m);
    return ADD(m);
  };
  assert.equal(scan(['date: Mon\r\n\r\nx'], add).text, 'date: Mon\r\nMessage-ID: <new@test>\r\n\r\nx');
  assert.deepEqual(asked, [{ messageId: true, date: false }]);
  const both = 'Message-Id: <a@b>\r\nDate: Mon\r\n\r\nx';
  assert.equal(scan([both], add).text, both);
  assert.equal(asked.length, 1);
  // headers in the body do not count as present
  assert.equal(scan(['S: 1\r\n\r\nDate: x\r\nMessage-ID: y\r\n']).text, 'S: 1\r\nMessage-ID: <new@test>\r\nDate: now\r\n\r\nDate: x\r\nMessage-ID: y\r\n');
});

test('without an adder (not a submission listener) nothing is inserted', () => {
  assert.equal(scan(['Subject: s\r\n\r\nbody'], null).text, 'Subject: s\r\n\r\nbody');
});

test('a message with no blank line passes through whole, a partial last line included', () => {
  const r = scan(['Received: x\r\nSubject: no end'], null);
  assert.equal(r.text, 'Received: x\r\nSubject: no end');
  assert.equal(r.hops, 1);
});

test('a message that is all headers still gets what is missing, on lines of their own', () => {
  // the client's headers were once passed through with nothing added when no blank line came
  assert.equal(scan(['Subject: s\r\n']).text, 'Subject: s\r\nMessage-ID: <new@test>\r\nDate: now\r\n');
  assert.equal(scan(['Subject: s\r\nDate: x']).text, 'Subject: s\r\nDate: x\r\nMessage-ID: <new@test>\r\n');
  assert.equal(scan([`X-Long: ${'y'.repeat(3000)}`]).text, `X-Long: ${'y'.repeat(3000)}\r\nMessage-ID: <new@test>\r\nDate: now\r\n`);
  assert.equal(scan(['Message-ID: <a@b>\r\nDate: x']).text, 'Message-ID: <a@b>\r\nDate: x');
  assert.equal(scan([]).text, 'Message-ID: <new@test>\r\nDate: now\r\n');
});

test('a header line too long to hold passes whole and is still counted', () => {
  const long = `Received: ${'x'.repeat(5000)}\r\n`;
  const pieces = long.match(/[\s\S]{1,300}/g)!;
  const r = scan([...pieces, 'Received: y\r\n\r\nbody']);
  assert.equal(r.hops, 2);
  assert.equal(r.text, `${long}Received: y\r\nMessage-ID: <new@test>\r\nDate: now\r\n\r\nbody`);
});

const headerLine = fc.oneof(
  fc.constantFrom('Received: from x\r\n', 'Message-ID: <a@b>\r\n', 'Date: Mon\r\n', 'Subject: hi\r\n', ' folded\r\n', 'received:y\n'),
  fc.string({ unit: fc.constantFrom('a', ':', ' ', '\r', 'R'), maxLength: 20 }).map((s) => `${s}\r\n`),
  fc.nat(1500).map((n) => `X-Long: ${'z'.repeat(n)}\r\n`),
);

test('property: output and hop count do not depend on how the bytes are cut', () => {
  fc.assert(
    fc.property(fc.array(headerLine, { maxLength: 10 }), fc.boolean(), fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 10 }), (lines, blank, cuts) => {
      const msg = lines.join('') + (blank ? '\r\nReceived: body\r\n' : '');
      const whole = scan([msg]);
      const pieces: string[] = [];
      for (let at = 0, i = 0; at < msg.length; i++) {
        const n = cuts[i % cuts.length]!;
        pieces.push(msg.slice(at, at + n));
        at += n;
      }
      const cut = scan(pieces);
      assert.equal(cut.text, whole.text);
      assert.equal(cut.hops, whole.hops);
      // nothing is lost or reordered: removing what was inserted gives the message back
      const inserted = whole.text.length - msg.length;
      assert.ok(inserted >= 0);
      if (inserted === 0) assert.equal(whole.text, msg);
    }),
    { numRuns: 1000 },
  );
});

// issue 15 item 8: smtp_tx_dataline() as OpenSMTPD 7.8 runs it on every listener

test('Bcc is left out with its continuation lines, in any case, and only in the header section', () => {
  const r = scan(['Subject: s\r\nBCC: hidden@x.test,\r\n\tother@x.test\r\nbcc:x\r\nX-A: 1\r\n\r\nBcc: in the body\r\n'], null);
  assert.equal(r.text, 'Subject: s\r\nX-A: 1\r\n\r\nBcc: in the body\r\n');
  // not Bcc: the name is everything before the colon (rfc5322.c)
  assert.equal(scan(['X-Bcc: kept\r\nBccx: kept\r\n\r\n'], null).text, 'X-Bcc: kept\r\nBccx: kept\r\n\r\n');
  // a Bcc line too long to hold is dropped whole
  assert.equal(scan([`Bcc: ${'b'.repeat(3000)}\r\n`, 'S: 1\r\n\r\n'], null).text, 'S: 1\r\n\r\n');
});

test('To, Cc and From: addresses without a domain get the listener\'s hostname (header_domain_append_callback)', () => {
  assert.equal(scan(['To: bob, "Alice, A." <alice>, carol@x.test\r\n\r\n'], null).text, 'To: bob@mx.test, "Alice, A." <alice@mx.test>, carol@x.test\r\n\r\n');
  assert.equal(scan(['cc: dave (Dave),\r\n\terin\r\nFrom: root\r\n\r\n'], null).text, 'cc: dave@mx.test (Dave),\r\n\terin@mx.test\r\nFrom: root@mx.test\r\n\r\n');
  // groups, empty <>, quoted @ and other headers are left alone
  assert.equal(scan(['To: undisclosed-recipients:;\r\nFrom: <>\r\nReply-To: bob\r\n\r\n'], null).text, 'To: undisclosed-recipients:;\r\nFrom: <>\r\nReply-To: bob\r\n\r\n');
  assert.equal(appendDomain(' "a@b" <x>', 'h'), ' "a@b" <x@h>');
  assert.equal(appendDomain(' <x >\n', 'h'), ' <x@h >\n');
  assert.equal(appendDomain(' bob (the @ boss)\n', 'h'), ' bob@h (the @ boss)\n');
  assert.equal(appendDomain(' ', 'h'), ' ');
  assert.equal(appendDomain(' "unbalanced', 'h'), ' "unbalanced');
});

test('Date, then Message-ID, where they are missing', () => {
  const add = (m: { messageId: boolean; date: boolean }) => `${m.date ? 'Date: now\r\n' : ''}${m.messageId ? 'Message-ID: <new@test>\r\n' : ''}`;
  assert.equal(scan(['To: bob\r\n\r\nx'], add).text, 'To: bob@mx.test\r\nDate: now\r\nMessage-ID: <new@test>\r\n\r\nx');
});

const changedLine = fc.constantFrom('Bcc: x\r\n', 'To: bob,\r\n', ' carol\r\n', 'From: <root>\r\n', 'Cc: a@b\r\n', '\tmore\r\n', 'Subject: s\r\n', `To: ${'t'.repeat(1200)}\r\n`);

test('property: Bcc and address completion do not depend on how the bytes are cut', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(headerLine, changedLine), { maxLength: 12 }), fc.boolean(), fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 10 }), (lines, blank, cuts) => {
      const msg = lines.join('') + (blank ? '\r\nBcc: body\r\n' : '');
      const whole = scan([msg]);
      const pieces: string[] = [];
      for (let at = 0, i = 0; at < msg.length; i++) {
        const n = cuts[i % cuts.length]!;
        pieces.push(msg.slice(at, at + n));
        at += n;
      }
      assert.equal(scan(pieces).text, whole.text);
    }),
    { numRuns: 1000 },
  );
});
