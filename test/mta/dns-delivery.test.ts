/**
 * Remote delivery as the daemon really does it, with MX records from a DNS server this test runs
 * on loopback (`resolver`) and sink SMTP servers on 127.0.0.x (`mta port`): preference order and
 * fallback past a dead MX, session reuse, one transaction for many recipients, and bounces back
 * to the local sender for a null MX and for a 5xx recipient.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, sendMessage, startMailHost, type MailHost } from '../harness/mail.js';
import { startDnsServer, type DnsServer } from '../harness/dns-server.js';
import { Sink } from './sink.js';
import { SmtpTestClient } from '../harness/net.js';

let dns: DnsServer;
let sink: Sink;
let host: MailHost;

before(async () => {
  sink = await Sink.start({ host: '127.0.0.3', caps: ['PIPELINING', 'SIZE 10000000'], rcpt: (a) => (a.includes('reject@') ? '550 5.1.1 No such user here' : undefined) });
  dns = await startDnsServer({
    // mx1 (127.0.0.2) has nothing listening on the port: the mta must fall back to mx2
    'fallback.test': { MX: [{ preference: 10, exchange: 'mx1.fallback.test' }, { preference: 20, exchange: 'mx2.fallback.test' }] },
    'mx1.fallback.test': { A: ['127.0.0.2'] },
    'mx2.fallback.test': { A: ['127.0.0.3'] },
    'busy.test': { MX: [{ preference: 10, exchange: 'mx2.fallback.test' }] },
    'strict.test': { MX: [{ preference: 10, exchange: 'mx2.fallback.test' }] },
    'nullmx.test': { MX: [{ preference: 0, exchange: '.' }] },
  });
  host = await startMailHost({
    extra: [
      `resolver "127.0.0.1:${dns.port}"`, `mta port ${sink.port}`, 'action "out" relay',
      // one domain gets its own limits; the others keep the global ones
      'mta limit for domain strict.test session-mail-max 1',
    ].join('\n'),
    rules: [
      'match from any for domain <domains> action "local"',
      'match from local for any action "out"',
    ].join('\n'),
  });
});
after(async () => {
  await host.stop();
  await sink.close();
  await dns.close();
});

test('MX preference, and fallback past an MX that refuses connections', async () => {
  assert.equal((await sendMessage(host.port, 'alice@example.test', ['x@fallback.test'], 'Subject: fb\r\n\r\nx')).at(-1)!.code, 250);
  const tx = await eventually(async () => sink.transactions.find((t) => t.body.includes('Subject: fb')), 'delivery via mx2');
  assert.match(tx.rcpts[0]!, /^RCPT TO:<x@fallback\.test>/);
  assert.ok(dns.queries.some((q) => q.name === 'fallback.test' && q.type === 'MX'));
  await host.daemon.waitForLog(/mta-error address=127\.0\.0\.2:/);
});

test('reuse: thirty messages to one domain over far fewer connections', async () => {
  const before = sink.commands.length;
  const c = await SmtpTestClient.connect(host.port);
  try {
    await c.reply();
    await c.cmd('EHLO client.test');
    for (let i = 0; i < 30; i++) {
      await c.cmd('MAIL FROM:<alice@example.test>');
      await c.cmd(`RCPT TO:<r${i}@busy.test>`);
      await c.cmd('DATA');
      assert.equal((await c.cmd(`Subject: reuse-${i}\r\n\r\nx\r\n.`)).code, 250);
    }
  } finally {
    c.close();
  }
  await eventually(async () => sink.transactions.filter((t) => t.body.includes('Subject: reuse-')).length === 30 || undefined, 'thirty deliveries');
  const connections = sink.commands.length - before;
  // at most the per-route limit (5) of sessions, each carrying several messages
  assert.ok(connections <= 5, `connections: ${connections}`);
});

test('mta limit for domain: a domain limited to one message per session gets a session per message', async () => {
  const before = sink.commands.length;
  for (let i = 0; i < 4; i++) {
    assert.equal((await sendMessage(host.port, 'alice@example.test', [`s${i}@strict.test`], `Subject: strict-${i}\r\n\r\nx`)).at(-1)!.code, 250);
    await eventually(async () => sink.transactions.some((t) => t.body.includes(`Subject: strict-${i}`)) || undefined, `delivery ${i}`);
  }
  assert.equal(sink.commands.length - before, 4);
});

test('a message with 50 recipients at one domain is one transaction', async () => {
  const rcpts = Array.from({ length: 50 }, (_, i) => `u${i}@busy.test`);
  assert.equal((await sendMessage(host.port, 'alice@example.test', rcpts, 'Subject: fifty\r\n\r\nx')).at(-1)!.code, 250);
  const tx = await eventually(async () => sink.transactions.find((t) => t.body.includes('Subject: fifty')), 'the transaction');
  assert.equal(tx.rcpts.length, 50);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(sink.transactions.filter((t) => t.body.includes('Subject: fifty')).length, 1);
});

const bounces = async () => (await host.maildir('alice')).filter((m) => m.includes('Subject: Delivery status notification: failed'));

test('a null MX comes back to the local sender as a failure report', async () => {
  assert.equal((await sendMessage(host.port, 'alice@example.test', ['x@nullmx.test'], 'Subject: to-null\r\n\r\nx')).at(-1)!.code, 250);
  const report = await eventually(async () => (await bounces()).find((m) => m.includes('x@nullmx.test')), 'the bounce');
  assert.match(report, /Action: failed\r?\nStatus: 5\.1\.10/);
});

test('a 5xx recipient comes back as a failure report with the remote reply', async () => {
  assert.equal((await sendMessage(host.port, 'alice@example.test', ['reject@busy.test', 'ok@busy.test'], 'Subject: half\r\n\r\nx')).at(-1)!.code, 250);
  const report = await eventually(async () => (await bounces()).find((m) => m.includes('reject@busy.test')), 'the bounce')
    .catch((err: Error) => { throw new Error(`${err.message}\n${host.daemon.logs().split('\n').filter((l) => /reject|bounce|half/.test(l)).join('\n')}`); });
  assert.match(report, /Final-Recipient: rfc822; reject@busy\.test\r?\nAction: failed\r?\nStatus: 5\.1\.1/);
  assert.match(report, /Diagnostic-Code: smtp; .*No such user here/);
  assert.doesNotMatch(report, /ok@busy\.test/);
});
