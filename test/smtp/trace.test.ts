/** The Received: line and submission headers: client-given values can never end or break a header line. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { SessionFacts } from '../../src/bus/messages.js';
import { headerSafe, rfc5322Date, submissionHeaders, traceHeader, type TraceInput } from '../../src/smtp/trace.js';

const NOW = new Date(Date.UTC(2026, 0, 5, 7, 8, 9));

function facts(over: Partial<SessionFacts> = {}): SessionFacts {
  return {
    sessionId: 's1', listener: 0, clientAddress: '192.0.2.7', clientPort: 4000, localAddress: '127.0.0.1', localPort: 25,
    tls: false, socket: false, helo: 'client.example', rdns: 'rdns.example', ...over,
  };
}

function input(over: Partial<TraceInput> = {}): TraceInput {
  return { facts: facts(), hostname: 'mx.test', msgid: '0123abcd', rcpts: ['u@x.example'], smtputf8: false, showAuth: false, now: NOW, ...over };
}

test('the shape of a plain Received line', () => {
  assert.equal(
    traceHeader(input()),
    'Received: from client.example (rdns.example [192.0.2.7])\r\n\tby mx.test (tsmtpd) with ESMTP id 0123abcd\r\n\tfor <u@x.example>;\r\n\tMon, 5 Jan 2026 07:08:09 +0000\r\n',
  );
  assert.equal(rfc5322Date(NOW), 'Mon, 5 Jan 2026 07:08:09 +0000');
});

test('TLS, AUTH, SMTPUTF8 and the local socket change what is written', () => {
  const t = traceHeader(input({
    facts: facts({ authUser: 'alice' }), smtputf8: true, showAuth: true, rcpts: ['a@x', 'b@x'],
    tls: { version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', bits: 256, verified: false },
  }));
  assert.match(t, /with UTF8SMTPSA id/);
  // smtp_message_begin(): the TLS parameters and received-auth's auth=/user= on the by line
  assert.match(t, /\r\n\tby mx\.test \(tsmtpd\) with UTF8SMTPSA id 0123abcd \(TLSv1\.3:TLS_AES_256_GCM_SHA384:256:NO\) auth=yes user=alice;\r\n/);
  // several recipients are not disclosed to each other
  assert.doesNotMatch(t, /for </);
  assert.doesNotMatch(traceHeader(input({ facts: facts({ authUser: 'alice' }) })), /alice/);
  const tls = { version: 'TLSv1.2', cipher: 'X', bits: 128, verified: true };
  assert.match(traceHeader(input({ showAuth: true, tls })), / \(TLSv1\.2:X:128:YES\) auth=no\r\n/);
  assert.doesNotMatch(traceHeader(input({ showAuth: false, tls, facts: facts({ authUser: 'alice' }) })), /auth=|alice/);
  assert.match(traceHeader(input({ esmtp: false })), / with SMTP id /);
  assert.match(traceHeader(input({ facts: facts({ socket: true, clientAddress: 'local' }) })), /^Received: from localhost \(localhost \[local\]\)\r\n/);
});

test('mask-src: no from clause, so neither the client\'s name nor its address is written (F_MASK_SOURCE)', () => {
  const t = traceHeader(input({ maskSource: true }));
  assert.equal(t, 'Received: \r\n\tby mx.test (tsmtpd) with ESMTP id 0123abcd\r\n\tfor <u@x.example>;\r\n\tMon, 5 Jan 2026 07:08:09 +0000\r\n');
  assert.doesNotMatch(t, /192\.0\.2\.7|client\.example|rdns\.example/);
});

test('headerSafe keeps printable ASCII without header delimiters and bounds the length', () => {
  assert.equal(headerSafe('a b\r\nc(d)<e>"f\\;g\x00é'), 'a?b??c?d??e??f??g??');
  assert.equal(headerSafe('x'.repeat(1000)).length, 255);
});

test('submission headers: only what is missing', () => {
  assert.equal(submissionHeaders({ messageId: false, date: false }, 'h', NOW), '');
  assert.equal(submissionHeaders({ messageId: false, date: true }, 'h', NOW), 'Date: Mon, 5 Jan 2026 07:08:09 +0000\r\n');
  assert.match(submissionHeaders({ messageId: true, date: false }, 'h\r\nX: y', NOW), /^Message-ID: <[0-9a-f]{16}@h\?\?X:\?y>\r\n$/);
});

/** Every line is printable ASCII (a continuation starts with one tab), and the header ends with CRLF. */
function assertOneHeader(h: string): void {
  assert.ok(h.startsWith('Received: ') && h.endsWith('\r\n'));
  const lines = h.slice(0, -2).split('\r\n');
  lines.forEach((line, i) => {
    const text = i === 0 ? line : line.replace(/^\t/, '');
    assert.ok(i === 0 || line.startsWith('\t'), JSON.stringify(line));
    assert.match(text, /^[\x20-\x7e]*$/, JSON.stringify(line));
  });
}

test('property: no CR, LF or control character from the client reaches the header', () => {
  const hostile = fc.string({ unit: fc.oneof(fc.constantFrom('\r', '\n', '\r\n', '\x00', '\t', '\x7f', 'é', '(', ')', ';', ' '), fc.string({ unit: 'binary', maxLength: 2 })), maxLength: 40 });
  fc.assert(
    fc.property(hostile, fc.option(hostile), fc.option(hostile), hostile, fc.option(hostile), fc.array(hostile, { maxLength: 2 }), fc.boolean(), fc.boolean(),
      (addr, helo, rdns, hostname, authUser, rcpts, tls, socket) => {
        const h = traceHeader(input({
          facts: facts({ clientAddress: addr, socket, ...(helo !== null ? { helo } : { helo: undefined }), ...(rdns !== null ? { rdns } : { rdns: undefined }), ...(authUser !== null ? { authUser } : {}) }),
          hostname, rcpts, showAuth: true,
          ...(tls ? { tls: { version: addr, cipher: hostname, bits: 128, verified: true } } : {}),
        }));
        assertOneHeader(h);
        const added = submissionHeaders({ messageId: true, date: true }, hostname, NOW);
        assert.ok(added.endsWith('\r\n'));
        const lines = added.slice(0, -2).split('\r\n');
        assert.equal(lines.length, 2);
        for (const l of lines) assert.match(l, /^(Message-ID|Date): [\x20-\x7e]*$/);
      }),
    { numRuns: 1500 },
  );
});
