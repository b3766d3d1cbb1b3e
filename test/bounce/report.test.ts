/** RFC 3464 reports as written to disk, parsed back: boundary, parts, required fields, RET=FULL versus HDRS, who is notified. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bounceRecipient, duration, shouldNotify, writeDsnReport, type DsnInput, type DsnKind } from '../../src/bounce/report.js';
import { FakeClock } from '../../src/clock.js';
import type { DsnParams } from '../../src/queue/envelope.js';

const ORIGINAL = 'From: a@c.test\r\nSubject: hello\nTo: r@dest.example\r\n\r\nline one\nline two\r\n\r\n--not a boundary\r\nlast line without end';

interface Part {
  headers: Map<string, string>;
  body: string;
}

/** Header block to a map (lower-case names), unfolding nothing: the report writes none. */
function headers(block: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of block.split('\r\n')) {
    const colon = line.indexOf(':');
    assert.ok(colon > 0, `not a header: ${JSON.stringify(line)}`);
    m.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  return m;
}

function parse(text: string): { top: Map<string, string>; parts: Part[] } {
  assert.doesNotMatch(text.replace(/\r\n/g, ''), /[\r\n]/, 'every line ends in CRLF');
  const sep = text.indexOf('\r\n\r\n');
  const top = headers(text.slice(0, sep));
  const boundary = /boundary="([^"]+)"/.exec(top.get('content-type') ?? '')?.[1];
  assert.ok(boundary, 'a boundary parameter');
  const body = text.slice(sep + 4);
  const pieces = body.split(`\r\n--${boundary}`);
  // preamble, the parts, then the close delimiter with nothing after it
  assert.equal(pieces.at(-1), '--\r\n');
  const parts = pieces.slice(1, -1).map((p) => {
    assert.ok(p.startsWith('\r\n'));
    const end = p.indexOf('\r\n\r\n');
    return { headers: headers(p.slice(2, end)), body: p.slice(end + 4) };
  });
  return { top, parts };
}

/** The delivery-status body: groups of fields separated by blank lines. */
function statusGroups(body: string): Map<string, string>[] {
  return body.replace(/\r\n$/, '').split('\r\n\r\n').map(headers);
}

async function report(over: Partial<DsnInput>): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'tsmtpd-dsn-'));
  try {
    const originalPath = join(dir, 'original');
    writeFileSync(originalPath, ORIGINAL);
    const out = join(dir, 'report');
    await writeDsnReport(out, {
      reportingMta: 'mx.test', sender: 'a@c.test', arrivalDate: new Date(Date.UTC(2026, 0, 1)), ret: 'FULL', kind: 'failure',
      recipients: [{ finalRcpt: 'r@dest.example', status: '5.1.1', action: 'failed', diagnostic: '550 5.1.1 no such user', remoteMta: 'mx.dest.example', orcpt: 'rfc822;R@dest.example' }],
      originalPath, clock: new FakeClock(Date.UTC(2026, 0, 2, 3, 4, 5)), ...over,
    });
    // the report never overwrites an existing file
    await assert.rejects(writeDsnReport(out, { reportingMta: 'x', sender: 'y', arrivalDate: new Date(0), ret: 'HDRS', kind: 'delay', recipients: [], originalPath, clock: new FakeClock() }));
    // nor fails anywhere but in its promise: no directory, no original
    await assert.rejects(writeDsnReport(join(dir, 'no', 'such', 'dir'), { reportingMta: 'x', sender: 'y', arrivalDate: new Date(0), ret: 'HDRS', kind: 'delay', recipients: [], originalPath, clock: new FakeClock() }), /ENOENT/);
    await assert.rejects(writeDsnReport(join(dir, 'other'), { reportingMta: 'x', sender: 'y', arrivalDate: new Date(0), ret: 'HDRS', kind: 'delay', recipients: [], originalPath: join(dir, 'missing'), clock: new FakeClock() }), /ENOENT/);
    return readFileSync(out, 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a failure with RET=FULL: three parts, the required fields, the whole original', async () => {
  const { top, parts } = parse(await report({ envid: 'env-1' }));
  assert.equal(top.get('to'), '<a@c.test>');
  assert.equal(top.get('from'), 'Mailer Daemon <MAILER-DAEMON@mx.test>');
  assert.equal(top.get('subject'), 'Delivery status notification: failed');
  assert.equal(top.get('date'), 'Fri, 2 Jan 2026 03:04:05 +0000');
  assert.equal(top.get('mime-version'), '1.0');
  assert.equal(top.get('auto-submitted'), 'auto-replied');
  assert.match(top.get('content-type')!, /^multipart\/report; report-type=delivery-status; /);
  assert.equal(parts.length, 3);
  assert.equal(parts[0]!.headers.get('content-type'), 'text/plain; charset=us-ascii');
  assert.match(parts[0]!.body, /r@dest\.example: 550 5\.1\.1 no such user/);
  assert.equal(parts[1]!.headers.get('content-type'), 'message/delivery-status');
  const [msg, rcpt, ...more] = statusGroups(parts[1]!.body);
  assert.equal(more.length, 0);
  assert.equal(msg!.get('reporting-mta'), 'dns; mx.test');
  assert.equal(msg!.get('original-envelope-id'), 'env-1');
  assert.equal(msg!.get('arrival-date'), 'Thu, 1 Jan 2026 00:00:00 +0000');
  assert.equal(rcpt!.get('final-recipient'), 'rfc822; r@dest.example');
  assert.equal(rcpt!.get('original-recipient'), 'rfc822; R@dest.example');
  assert.equal(rcpt!.get('action'), 'failed');
  assert.equal(rcpt!.get('status'), '5.1.1');
  assert.equal(rcpt!.get('remote-mta'), 'dns; mx.dest.example');
  assert.equal(rcpt!.get('diagnostic-code'), 'smtp; 550 5.1.1 no such user');
  assert.equal(parts[2]!.headers.get('content-type'), 'message/rfc822');
  assert.equal(parts[2]!.body, `${ORIGINAL.replace(/\r?\n/g, '\r\n')}\r\n`);
});

test('RET=HDRS, and any delay report, carry the original headers only', async () => {
  for (const over of [{ ret: 'HDRS' as const }, { ret: 'FULL' as const, kind: 'delay' as const }]) {
    const { top, parts } = parse(await report(over));
    assert.equal(parts[2]!.headers.get('content-type'), 'text/rfc822-headers');
    assert.equal(parts[2]!.body, 'From: a@c.test\r\nSubject: hello\r\nTo: r@dest.example\r\n');
    if (over.kind === 'delay') assert.equal(top.get('subject'), 'Delivery status notification: delayed');
  }
});

test('several recipients, each with its own group; hostile values stay on their lines', async () => {
  const text = await report({
    kind: 'failure',
    recipients: [
      { finalRcpt: 'x@d\r\nBcc: evil@x', status: '5.0.0', action: 'failed', diagnostic: '550 bad\r\nX-Injected: yes' },
      { finalRcpt: 'y@d', status: '4.4.1', action: 'delayed' },
    ],
  });
  const { parts } = parse(text);
  const groups = statusGroups(parts[1]!.body);
  assert.equal(groups.length, 3);
  assert.equal(groups[1]!.get('final-recipient'), 'rfc822; x@d??Bcc:?evil@x');
  assert.equal(groups[1]!.get('diagnostic-code'), 'smtp; 550 bad X-Injected: yes');
  assert.equal(groups[2]!.get('status'), '4.4.1');
  assert.equal(groups[2]!.has('diagnostic-code'), false);
  assert.doesNotMatch(text, /^(Bcc|X-Injected):/m);
});

test('a large original is streamed and copied whole, lines cut across reads included', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsmtpd-dsn-'));
  try {
    const lines = Array.from({ length: 20000 }, (_, i) => `line ${i} ${'x'.repeat(i % 50)}`);
    const original = `Subject: big\n\n${lines.join('\n')}\n`;
    writeFileSync(join(dir, 'original'), original);
    await writeDsnReport(join(dir, 'report'), {
      reportingMta: 'mx.test', sender: 'a@c.test', arrivalDate: new Date(0), ret: 'FULL', kind: 'failure',
      recipients: [{ finalRcpt: 'r@d', status: '5.0.0', action: 'failed' }], originalPath: join(dir, 'original'), clock: new FakeClock(),
    });
    const { parts } = parse(readFileSync(join(dir, 'report'), 'latin1'));
    assert.equal(parts[2]!.body, original.replace(/\n/g, '\r\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('shouldNotify: the RFC 3461 table; the null sender gets nothing', () => {
  const table: [DsnParams['notify'], Record<DsnKind, boolean>][] = [
    [undefined, { failure: true, delay: true, success: false }],
    [['NEVER'], { failure: false, delay: false, success: false }],
    [['SUCCESS'], { failure: false, delay: false, success: true }],
    [['FAILURE'], { failure: true, delay: false, success: false }],
    [['DELAY'], { failure: false, delay: true, success: false }],
    [['SUCCESS', 'FAILURE', 'DELAY'], { failure: true, delay: true, success: true }],
  ];
  for (const [notify, want] of table) {
    for (const kind of ['failure', 'delay', 'success'] as const) {
      assert.equal(shouldNotify(notify ? { notify } : {}, kind), want[kind], `${notify} ${kind}`);
    }
  }
  assert.equal(bounceRecipient(''), undefined);
  assert.equal(bounceRecipient('a@c.test'), 'a@c.test');
});

test('bounce_duration(): the largest whole unit, singular for one', () => {
  assert.deepEqual([0, 1, 59, 60, 119, 3599, 3600, 86399, 86400, 4 * 86400 + 5].map(duration),
    ['0 seconds', '1 second', '59 seconds', '1 minute', '1 minute', '59 minutes', '1 hour', '23 hours', '1 day', '4 days']);
});

test('notices as bounce.c words them: a delay says how long it waited and how long it is kept; a relay without DSN is `relayed`', async () => {
  const delay = parse(await report({ kind: 'delay', delay: { delayedFor: 4 * 3600, keptFor: 4 * 86400 }, recipients: [{ finalRcpt: 'r@dest.example', status: '4.4.7', action: 'delayed', diagnostic: '451 4.3.0 later' }] }));
  assert.match(delay.parts[0]!.body, /^A message is delayed for more than 4 hours for the following\r\nlist of recipients:\r\n/m);
  assert.match(delay.parts[0]!.body, /^The message is kept in the queue for up to 4 days\.\r$/m);
  const relayed = parse(await report({ kind: 'success', recipients: [{ finalRcpt: 'r@dest.example', status: '2.0.0', action: 'relayed', remoteMta: 'mx.dest.example' }] }));
  assert.equal(relayed.top.get('subject'), 'Delivery status notification: relayed');
  assert.match(relayed.parts[0]!.body, /^Your message was relayed to these recipients\.\r$/m);
  const delivered = parse(await report({ kind: 'success', recipients: [{ finalRcpt: 'r@dest.example', status: '2.0.0', action: 'delivered' }] }));
  assert.equal(delivered.top.get('subject'), 'Delivery status notification: delivered');
});

test('a report about a UTF-8 address is an RFC 6533 one: global types, utf-8 address type, UTF-8 text', async () => {
  const { top, parts } = parse(await report({ sender: 'émile@c.test', recipients: [{ finalRcpt: 'jörg@dest.example', status: '5.6.7', action: 'failed', diagnostic: 'no SMTPUTF8' }, { finalRcpt: 'ascii@dest.example', status: '5.1.1', action: 'failed' }] }));
  assert.equal(top.get('to'), '<émile@c.test>');
  assert.match(top.get('content-type')!, /report-type=global-delivery-status/);
  assert.equal(parts[0]!.headers.get('content-type'), 'text/plain; charset=utf-8');
  assert.match(parts[0]!.body, /^jörg@dest\.example: no SMTPUTF8\r$/m);
  assert.equal(parts[1]!.headers.get('content-type'), 'message/global-delivery-status');
  const [, utf8, ascii] = statusGroups(parts[1]!.body);
  assert.equal(utf8!.get('final-recipient'), 'utf-8; jörg@dest.example');
  assert.equal(ascii!.get('final-recipient'), 'rfc822; ascii@dest.example');
  assert.equal(parts[2]!.headers.get('content-type'), 'message/global');
});
