/**
 * End to end through the real daemon: a message for a remote domain leaves by `relay host smtp://`
 * to the sink; a sink that answers 250 to DATA keeps it queued; a broken STARTTLS is retried in
 * clear, logged without -v and counted in `tsmtpctl show stats`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { TSMTPD_BIN } from '../harness/daemon.js';
import { eventually, sendMessage, startMailHost, type MailHost } from '../harness/mail.js';
import { makeCert, Sink, type SinkOptions } from './sink.js';

const CTL = resolve(dirname(TSMTPD_BIN), 'tsmtpctl.js');

function ctl(host: MailHost, ...args: string[]): string {
  const r = spawnSync(process.execPath, [CTL, '--spool', host.daemon.spool, ...args], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A daemon relaying remote.test to a sink on 127.0.0.2 by `relay host smtp://` (opportunistic STARTTLS). */
async function relayTo(t: { after(fn: () => Promise<void>): void }, o: Partial<SinkOptions>): Promise<{ sink: Sink; host: MailHost }> {
  const sink = await Sink.start({ host: '127.0.0.2', ...o });
  const host = await startMailHost({
    extra: `action "out" relay host smtp://127.0.0.2:${sink.port} helo relay.example.test`,
    rules: 'match from any for domain "remote.test" action "out"\nmatch from local for local action "local"',
  });
  t.after(async () => { await host.stop(); await sink.close(); });
  return { sink, host };
}

test('the daemon relays a remote recipient to the smarthost, recipients batched, with the mta delivery line', async (t) => {
  const sink = await Sink.start({ host: '127.0.0.2', caps: ['PIPELINING', 'SIZE 1000000'] });
  const host = await startMailHost({
    extra: `action "out" relay host smtp://127.0.0.2:${sink.port} helo relay.example.test`,
    rules: 'match from any for domain "remote.test" action "out"\nmatch from local for local action "local"',
  });
  t.after(async () => { await host.stop(); await sink.close(); });
  const body = 'Subject: out\r\n\r\nline one\r\n.dotted';
  const replies = await sendMessage(host.port, 'sender@client.test', ['a@remote.test', 'b@remote.test'], body);
  assert.equal(replies.at(-1)!.code, 250, JSON.stringify(replies));
  const tx = await eventually(async () => sink.transactions[0], 'the relayed message');
  assert.equal(tx.mail.split(' ')[0], 'MAIL');
  assert.match(tx.mail, /^MAIL FROM:<sender@client\.test> SIZE=\d+$/);
  assert.deepEqual(tx.rcpts.map((r) => r.replace(/ .*/, '')).sort(), ['RCPT', 'RCPT']);
  assert.ok(tx.body.endsWith(body + '\r\n'), tx.body);
  assert.ok(sink.commands[0]!.includes('EHLO relay.example.test'));
  await host.daemon.waitForLog(/mta delivery evpid=\S+ from=<sender@client\.test> to=<b@remote\.test> .*relay="127\.0\.0\.2".*result="Ok"/);
  assert.equal(sink.transactions.length, 1, 'both recipients in one transaction');
});

test('issue 13: a next hop that answers 250 to DATA gets no body and no delivery: the envelope stays queued, no bounce', async (t) => {
  const { sink, host } = await relayTo(t, { replies: { DATA: '250 2.0.0 ok, but no 354' } });
  const replies = await sendMessage(host.port, 'sender@client.test', ['a@remote.test'], 'Subject: kept\r\n\r\nbody');
  assert.equal(replies.at(-1)!.code, 250);
  await host.daemon.waitForLog(/mta-error .*reply not allowed to DATA: 250 2\.0\.0 ok, but no 354/);
  await host.daemon.waitForLog(/mta delivery evpid=\S+ from=<sender@client\.test> to=<a@remote\.test> .*result="TempFail"/);
  assert.match(ctl(host, 'show', 'queue'), /a@remote\.test/);
  assert.doesNotMatch(host.daemon.logs(), /result="Ok"|bounce/);
  assert.equal(sink.transactions.length, 0);
  assert.ok(!sink.commands.flat().some((c) => c.startsWith('Subject:')), 'no body line was sent');
});

test('issue 13: a STARTTLS handshake that breaks is retried in clear with a warning (no -v) and mta.tls.downgrade in show stats', async (t) => {
  const { sink, host } = await relayTo(t, { caps: ['STARTTLS'], cert: makeCert(['127.0.0.2']), brokenTls: true });
  const replies = await sendMessage(host.port, 'sender@client.test', ['a@remote.test'], 'Subject: in clear\r\n\r\nbody');
  assert.equal(replies.at(-1)!.code, 250);
  await host.daemon.waitForLog(/mta delivery .*to=<a@remote\.test> .*result="Ok"/);
  assert.equal(sink.transactions[0]!.tls, false);
  assert.match(host.daemon.logs(), /mta tls-downgrade address=127\.0\.0\.2:\d+ host=127\.0\.0\.2 reason="TLS handshake failed: [^"]+"/);
  // counters reach the stat role summed every 100 ms (bus/stat-coalescer.ts), not with the log line
  await eventually(async () => /^mta\.tls\.downgrade=1$/m.test(ctl(host, 'show', 'stats')), 'mta.tls.downgrade=1 in show stats');
});
