/**
 * Issue 13, slow clients: the idle timer restarts on every byte, so before these limits a client
 * sending a byte every few hundred milliseconds kept its session for ever. The real daemon, with
 * `smtp limit max-command-time` and `min-data-rate` from smtpd.conf, cuts such a client with
 * 421 4.4.2 while its bytes still come; the loops below are bounded, and no timing is asserted:
 * only that the cut comes before the client runs out of bytes to trickle.
 * (Fake-clock semantics of the same deadlines: test/smtp/deadline.test.ts.)
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { startMailHost, type MailHost } from '../harness/mail.js';
import { SmtpTestClient } from '../harness/net.js';

let host: MailHost;

before(async () => {
  host = await startMailHost({ extra: 'smtp timeout 3s\nsmtp limit max-command-time 2s min-data-rate 1K' });
});
after(async () => {
  await host.stop();
});

/** Write `bytes` one piece every 300 ms until the server hangs up; what it said last. */
async function trickle(c: SmtpTestClient, pieces: string[]): Promise<string> {
  c.socket.setNoDelay(true);
  let said = '';
  c.socket.on('data', (d: Buffer | string) => (said += d.toString()));
  for (const piece of pieces) {
    if (c.socket.readableEnded || c.socket.destroyed) break;
    c.write(piece);
    await new Promise((r) => setTimeout(r, 300));
  }
  await c.closedByPeer(3000).catch(() => undefined);
  return said;
}

test('a command line trickled a byte at a time is cut by max-command-time', { timeout: 60_000 }, async () => {
  const c = await SmtpTestClient.connect(host.port);
  try {
    await c.reply();
    const said = await trickle(c, [...'EHLO a-client-that-takes-its-time.example.test']);
    assert.match(said, /^421 4\.4\.2 Too slow, closing connection\r\n$/m);
  } finally {
    c.close();
  }
  assert.match(host.daemon.logs(), /smtp disconnected reason=too-slow-line/);
});

test('a body trickled below min-data-rate is cut, though each piece restarts the idle timer', { timeout: 60_000 }, async () => {
  const c = await SmtpTestClient.connect(host.port);
  try {
    await c.reply();
    await c.cmd('EHLO slow.example.test');
    assert.equal((await c.cmd('MAIL FROM:<slow@example.test>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<bob@example.test>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    const said = await trickle(c, Array.from({ length: 60 }, () => 'ten bytes\n'));
    assert.match(said, /421 4\.4\.2 Too slow, closing connection\r\n$/);
  } finally {
    c.close();
  }
  assert.match(host.daemon.logs(), /smtp disconnected reason=too-slow-body/);
});

test('bad values of the new settings are refused with file:line', () => {
  const tail = 'action a relay\nmatch for any action a\n';
  for (const [line, message] of [
    ['smtp limit max-command-time 0', /max-command-time must be at least 1s/],
    ['smtp limit max-command-time soon', /invalid delay: soon/],
    ['smtp limit min-data-rate 0', /invalid min-data-rate: 0/],
    ['smtp limit min-data-rate fast', /invalid min-data-rate: fast/],
    ['smtp limit max-command-time', /expected a delay, got end of line/],
    ['smtp ban auth-failures 0 in 10m for 1h', /at least 1 failure/],
    ['smtp ban auth-failures 5 in 10m', /expected "for", got end of line/],
    ['smtp ban auth-failures 5 within 10m for 1h', /expected "in", got "within"/],
    ['smtp ban auth-failures 5 in 0 for 1h', /at least 1s/],
  ] as const) {
    assert.throws(() => parseConfig(`listen on lo\n${line}\n${tail}`, { file: 'f.conf' }), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.equal(err.line, 2, line);
      assert.match(err.message, /^f\.conf:2: /);
      assert.match(err.detail, message, line);
      return true;
    });
  }
});
