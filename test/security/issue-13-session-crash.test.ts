/**
 * Issue 13: clients that pipeline a whole transaction start and vanish must not take the daemon
 * down. Twenty at a time send EHLO, MAIL, RCPT (to a relayed domain) and DATA in one write, then
 * close at once, half of them with an RST; before the fix the daemon exited 4 with
 * `TypeError: Cannot read properties of null (reading 'txid') at Session.data`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { startMailHost, type MailHost } from '../harness/mail.js';
import { freePort, SmtpTestClient } from '../harness/net.js';

let host: MailHost;

before(async () => {
  // the relay host never answers: no message gets that far, the clients are gone before
  const nowhere = await freePort('127.0.0.4');
  host = await startMailHost({
    extra: `action "out" relay host smtp://127.0.0.4:${nowhere}`,
    rules: 'match from any for domain "relay.test" action "out"\nmatch from any for domain <domains> action "local"',
  });
});
after(async () => {
  await host.stop();
});

/** One client: the pipelined burst, then gone as soon as the first bytes come back (or at once). */
function burst(port: number, rst: boolean, waitForBanner: boolean): Promise<void> {
  return new Promise((resolve) => {
    const s: Socket = connect({ port, host: '127.0.0.1' });
    const end = () => {
      if (rst) s.resetAndDestroy();
      else s.destroy();
    };
    s.on('error', () => undefined);
    s.on('close', () => resolve());
    s.on('connect', () => {
      s.write('EHLO crash.test\r\nMAIL FROM:<a@crash.test>\r\nRCPT TO:<someone@relay.test>\r\nDATA\r\n');
      if (!waitForBanner) end();
    });
    s.once('data', () => setImmediate(end));
  });
}

test('twenty clients at a time pipelining up to DATA and closing at once (half RST): the daemon lives', { timeout: 120_000 }, async () => {
  for (let round = 0; round < 15; round++) {
    await Promise.all(Array.from({ length: 20 }, (_, i) => burst(host.port, i % 2 === 0, round % 3 !== 0)));
    assert.equal(host.daemon.process.exitCode, null, `daemon exited in round ${round}:\n${host.daemon.logs().slice(-2000)}`);
  }
  // and it still serves
  const c = await SmtpTestClient.connect(host.port);
  try {
    assert.equal((await c.reply()).code, 220);
    assert.equal((await c.cmd('EHLO fresh.test')).code, 250);
    assert.equal((await c.cmd('MAIL FROM:<a@fresh.test>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<someone@relay.test>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
  } finally {
    c.close();
  }
  assert.doesNotMatch(host.daemon.logs(), /fatal/);
});
