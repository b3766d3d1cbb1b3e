/**
 * Issue 15 item 4: DSNs of relayed mail, through the real daemon and a sink on 127.0.0.2.
 * - A next hop that offers DSN gets NOTIFY, ORCPT, RET and ENVID (mta_session.c MTA_MAIL and
 *   MTA_RCPT) and the notice is its to send: no local one (queue.c IMSG_MTA_DELIVERY_OK with
 *   MTA_EXT_DSN).
 * - One that does not gets none of them, and NOTIFY=SUCCESS is answered with one `relayed`
 *   notice (queue.c mta_without_dsn, bounce.c action_str() and notice_relay).
 * - Reports come from MAILER-DAEMON at the listener's hostname (bounce.c uses the envelope's
 *   smtpname) and carry Remote-MTA (RFC 3464 §2.3.5).
 * - A delay notice says for how long the message has waited and for how long it is kept
 *   (bounce.c notice_warning, notice_warning2, bounce_duration()).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { TSMTPD_BIN } from '../harness/daemon.js';
import { eventually, startMailHost, type MailHost } from '../harness/mail.js';
import { SmtpTestClient, type SmtpReply } from '../harness/net.js';
import { Sink, type SinkOptions } from './sink.js';

const CTL = resolve(dirname(TSMTPD_BIN), 'tsmtpctl.js');

async function send(port: number, mail: string, rcpts: string[], body = 'Subject: dsn\r\n\r\nhello'): Promise<SmtpReply[]> {
  const c = await SmtpTestClient.connect(port);
  const replies: SmtpReply[] = [];
  try {
    replies.push(await c.reply());
    replies.push(await c.cmd('EHLO client.example.test'));
    replies.push(await c.cmd(mail));
    for (const r of rcpts) replies.push(await c.cmd(`RCPT TO:${r}`));
    const data = await c.cmd('DATA');
    replies.push(data);
    if (data.code === 354) replies.push(await c.cmd(`${body}\r\n.`));
    await c.cmd('QUIT');
  } finally {
    c.close();
  }
  return replies;
}

async function relayHost(t: { after(fn: () => Promise<void>): void }, o: Partial<SinkOptions>, extra = ''): Promise<{ sink: Sink; host: MailHost }> {
  const sink = await Sink.start({ host: '127.0.0.2', ...o });
  const host = await startMailHost({
    extra: `${extra}\naction "out" relay host smtp://127.0.0.2:${sink.port} helo relay.example.test`,
    rules: 'match from any for domain "remote.test" action "out"\nmatch from any for domain <domains> action "local"\nmatch from local for local action "local"',
  });
  t.after(async () => { await host.stop(); await sink.close(); });
  return { sink, host };
}

/** Until the queue holds nothing: every delivery, and any report it caused, is done with. */
async function queueEmpty(host: MailHost): Promise<void> {
  await eventually(async () => {
    const r = spawnSync(process.execPath, [CTL, '--spool', host.daemon.spool, 'show', 'queue'], { encoding: 'utf8', timeout: 10_000 });
    return r.status === 0 && r.stdout.trim() === '';
  }, 'an empty queue');
}

const box = (host: MailHost, user: string) => eventually(async () => { const m = await host.maildir(user); return m.length ? m : undefined; }, `mail for ${user}`);

test('a next hop offering DSN gets NOTIFY, ORCPT, RET and ENVID, and the sender gets no local notice', async (t) => {
  const { sink, host } = await relayHost(t, { caps: ['PIPELINING', 'DSN'] });
  const replies = await send(host.port, 'MAIL FROM:<alice@example.test> RET=HDRS ENVID=env+2B1', [
    '<a@remote.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@remote.test',
    // an ORCPT whose xtext holds UTF-8 octets relays as it came, not encoded twice
    '<b@remote.test> NOTIFY=FAILURE ORCPT=utf-8;j+C3+B6rg@remote.test',
  ]);
  assert.equal(replies.at(-1)!.code, 250, JSON.stringify(replies));
  const tx = await eventually(async () => sink.transactions[0], 'the relayed message');
  assert.equal(tx.mail, 'MAIL FROM:<alice@example.test> RET=HDRS ENVID=env+2B1');
  assert.deepEqual(tx.rcpts.sort(), [
    'RCPT TO:<a@remote.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@remote.test',
    'RCPT TO:<b@remote.test> NOTIFY=FAILURE ORCPT=utf-8;j+C3+B6rg@remote.test',
  ]);
  await host.daemon.waitForLog(/mta delivery .*to=<a@remote\.test> .*result="Ok"/);
  await queueEmpty(host);
  assert.doesNotMatch(host.daemon.logs(), /queue bounce /);
  assert.deepEqual(await host.maildir('alice'), []);
});

test('a next hop without DSN: nothing of DSN on its wire, and NOTIFY=SUCCESS gets one `relayed` notice with Remote-MTA, from MAILER-DAEMON at the hostname', async (t) => {
  const { sink, host } = await relayHost(t, { caps: ['PIPELINING'] });
  const replies = await send(host.port, 'MAIL FROM:<alice@example.test> RET=FULL', ['<a@remote.test> NOTIFY=SUCCESS']);
  assert.equal(replies.at(-1)!.code, 250, JSON.stringify(replies));
  const tx = await eventually(async () => sink.transactions[0], 'the relayed message');
  assert.equal(tx.mail, 'MAIL FROM:<alice@example.test>');
  assert.deepEqual(tx.rcpts, ['RCPT TO:<a@remote.test>']);
  const [notice] = await box(host, 'alice');
  await queueEmpty(host);
  assert.equal((await host.maildir('alice')).length, 1, 'one notice');
  assert.match(notice!, /^From: Mailer Daemon <MAILER-DAEMON@mx\.example\.test>$/m);
  assert.match(notice!, /^Subject: Delivery status notification: relayed$/m);
  assert.match(notice!, /^Your message was relayed to these recipients\.$/m);
  assert.match(notice!, /^Reporting-MTA: dns; mx\.example\.test$/m);
  assert.match(notice!, /^Action: relayed$/m);
  assert.match(notice!, /^Status: 2\.0\.0$/m);
  assert.match(notice!, /^Remote-MTA: dns; 127\.0\.0\.2$/m);
});

test('a failure report names the remote MTA that refused, and comes from MAILER-DAEMON at the listener hostname', async (t) => {
  const { host } = await relayHost(t, { caps: ['PIPELINING'], rcpt: () => '550 5.1.1 no such user here' });
  const replies = await send(host.port, 'MAIL FROM:<alice@example.test>', ['<gone@remote.test>']);
  assert.equal(replies.at(-1)!.code, 250, JSON.stringify(replies));
  const [bounce] = await box(host, 'alice');
  assert.match(bounce!, /^From: Mailer Daemon <MAILER-DAEMON@mx\.example\.test>$/m);
  assert.match(bounce!, /^Message-ID: <[0-9a-f]+@mx\.example\.test>$/m);
  assert.match(bounce!, /^Final-Recipient: rfc822; gone@remote\.test$/m);
  assert.match(bounce!, /^Action: failed$/m);
  assert.match(bounce!, /^Status: 5\.1\.1$/m);
  assert.match(bounce!, /^Remote-MTA: dns; 127\.0\.0\.2$/m);
  assert.match(bounce!, /^Diagnostic-Code: smtp; 550 5\.1\.1 no such user here$/m);
});

test('a delay notice says for how long the message has been delayed and for how long the queue keeps it', async (t) => {
  const { host } = await relayHost(t, { caps: ['PIPELINING'], rcpt: () => '451 4.3.0 try again later' }, 'bounce warn-interval 1s\nqueue ttl 3d');
  const replies = await send(host.port, 'MAIL FROM:<alice@example.test>', ['<slow@remote.test> NOTIFY=DELAY,FAILURE']);
  assert.equal(replies.at(-1)!.code, 250, JSON.stringify(replies));
  const [notice] = await box(host, 'alice');
  assert.match(notice!, /^Subject: Delivery status notification: delayed$/m);
  assert.match(notice!, /^A message is delayed for more than 1 second for the following$/m);
  assert.match(notice!, /^slow@remote\.test: .*451 4\.3\.0 try again later$/m);
  assert.match(notice!, /^The message is kept in the queue for up to 3 days\.$/m);
  assert.match(notice!, /^You DO NOT NEED to re-send the message to these recipients\.$/m);
  assert.match(notice!, /^Action: delayed$/m);
});
