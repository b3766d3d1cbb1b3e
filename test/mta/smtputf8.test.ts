/**
 * Issue 15 item 2: SMTPUTF8 end to end through the real daemon (RFC 6531). Command lines are
 * UTF-8, so a UTF-8 local part is found in the aliases and written once-encoded in Return-Path
 * and on the relay's wire; SMTPUTF8 is passed on to a next hop that offers it; a next hop that
 * does not never gets a UTF-8 address (X.6.7) or UTF-8 headers (X.6.9): the sender gets a bounce
 * that names the address in UTF-8 (RFC 6533), not as `??`.
 *
 * OpenSMTPD 7.8 has no SMTPUTF8 (smtp_session.c smtp_tx_mail_from/smtp_tx_rcpt_to refuse any
 * 8-bit address as a syntax error, valid_localpart in util.c); tsmtpd follows RFC 6531 instead,
 * as docs/opensmtpd-differences.md says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, startMailHost, type MailHost } from '../harness/mail.js';
import { SmtpTestClient, type SmtpReply } from '../harness/net.js';
import { Sink, type SinkOptions } from './sink.js';

/** A transaction with the MAIL line as given (SMTPUTF8 or not); every reply in order. */
async function send(port: number, mail: string, rcpts: string[], body: string): Promise<SmtpReply[]> {
  const c = await SmtpTestClient.connect(port);
  const replies: SmtpReply[] = [];
  try {
    replies.push(await c.reply());
    replies.push(await c.cmd('EHLO client.example.test'));
    replies.push(await c.cmd(mail));
    for (const r of rcpts) replies.push(await c.cmd(`RCPT TO:<${r}>`));
    const data = await c.cmd('DATA');
    replies.push(data);
    if (data.code === 354) replies.push(await c.cmd(`${body}\r\n.`));
    await c.cmd('QUIT');
  } finally {
    c.close();
  }
  return replies;
}

/** What the sink received as text: it keeps octets as latin1, so UTF-8 is decoded once here. */
const utf8 = (latin1: string) => Buffer.from(latin1, 'latin1').toString('utf8');

async function relayHost(t: { after(fn: () => Promise<void>): void }, o: Partial<SinkOptions>): Promise<{ sink: Sink; host: MailHost }> {
  const sink = await Sink.start({ host: '127.0.0.2', caps: ['PIPELINING'], ...o });
  const host = await startMailHost({
    aliases: 'postmaster: alice\némile: alice\n',
    extra: `action "out" relay host smtp://127.0.0.2:${sink.port} helo relay.example.test`,
    rules: 'match from any for domain "remote.test" action "out"\nmatch from any for domain <domains> action "local"\nmatch from local for local action "local"',
  });
  t.after(async () => { await host.stop(); await sink.close(); });
  return { sink, host };
}

test('a UTF-8 local part is looked up as UTF-8 (aliases) and Return-Path/Delivered-To carry it once encoded', async (t) => {
  const host = await startMailHost({ aliases: 'postmaster: alice\njörg: alice\n' });
  t.after(() => host.stop());
  const replies = await send(host.port, 'MAIL FROM:<émile@client.test> SMTPUTF8', ['jörg@example.test'], 'Subject: grüße\r\n\r\nhallo');
  assert.deepEqual(replies.slice(2).map((r) => r.code), [250, 250, 354, 250], JSON.stringify(replies));
  const [msg] = await eventually(async () => { const m = await host.maildir('alice'); return m.length ? m : undefined; }, 'the delivery');
  assert.match(msg!, /^Return-Path: <émile@client\.test>$/m);
  assert.match(msg!, /^Delivered-To: jörg@example\.test$/m);
  assert.match(msg!, /^Subject: grüße$/m);
  // the trace line of an SMTPUTF8 message names its recipient in UTF-8 (RFC 6532), not j?rg
  assert.match(msg!, /^\tfor <jörg@example\.test>;$/m);
  assert.match(msg!, /with UTF8SMTP id /);
});

test('without SMTPUTF8 a non-ASCII address is refused with 553 5.6.7 (RFC 6531 §3.5), at MAIL and at RCPT', async (t) => {
  const host = await startMailHost({ aliases: 'postmaster: alice\njörg: alice\n' });
  t.after(() => host.stop());
  const c = await SmtpTestClient.connect(host.port);
  try {
    await c.reply();
    await c.cmd('EHLO client.example.test');
    const mail = await c.cmd('MAIL FROM:<émile@client.test>');
    assert.equal(mail.code, 553);
    assert.match(mail.text, /^5\.6\.7 Non-ASCII addresses not permitted/);
    assert.equal((await c.cmd('MAIL FROM:<a@client.test>')).code, 250);
    const rcpt = await c.cmd('RCPT TO:<jörg@example.test>');
    assert.equal(rcpt.code, 553);
    assert.match(rcpt.text, /^5\.6\.7 /);
    // octets that are not UTF-8 are no address at all, with SMTPUTF8 or without
    c.write(Buffer.concat([Buffer.from('RSET\r\nMAIL FROM:<x@client.test> SMTPUTF8\r\nRCPT TO:<j'), Buffer.from([0xf6]), Buffer.from('rg@example.test>\r\n')]));
    assert.equal((await c.reply()).code, 250);
    assert.equal((await c.reply()).code, 250);
    assert.equal((await c.reply()).code, 553);
  } finally {
    c.close();
  }
});

test('relayed to a next hop offering SMTPUTF8: the addresses leave once encoded, with SMTPUTF8 (mta_session.c MTA_MAIL)', async (t) => {
  const { sink, host } = await relayHost(t, { caps: ['PIPELINING', 'SMTPUTF8'] });
  const replies = await send(host.port, 'MAIL FROM:<émile@client.test> SMTPUTF8', ['jörg@remote.test'], 'Subject: grüße\r\n\r\nhallo');
  assert.equal(replies.at(-1)!.code, 250, JSON.stringify(replies));
  const tx = await eventually(async () => sink.transactions[0], 'the relayed message');
  assert.equal(utf8(tx.mail), 'MAIL FROM:<émile@client.test> SMTPUTF8');
  assert.deepEqual(tx.rcpts.map(utf8), ['RCPT TO:<jörg@remote.test>']);
  assert.match(utf8(tx.body), /^Subject: grüße\r$/m);
  // ASCII addresses in an SMTPUTF8 transaction: SMTPUTF8 is still passed on
  const again = await send(host.port, 'MAIL FROM:<ascii@client.test> SMTPUTF8', ['b@remote.test'], 'Subject: grüße\r\n\r\nhallo');
  assert.equal(again.at(-1)!.code, 250);
  const tx2 = await eventually(async () => sink.transactions[1], 'the second message');
  assert.equal(tx2.mail, 'MAIL FROM:<ascii@client.test> SMTPUTF8');
});

test('a next hop without SMTPUTF8 never gets a UTF-8 address: a 5.6.7 bounce names it in UTF-8 (RFC 6533), no `??`', async (t) => {
  const { sink, host } = await relayHost(t, {});
  const replies = await send(host.port, 'MAIL FROM:<alice@example.test> SMTPUTF8', ['jörg@remote.test'], 'Subject: hi\r\n\r\nhallo');
  assert.equal(replies.at(-1)!.code, 250, JSON.stringify(replies));
  const [bounce] = await eventually(async () => { const m = await host.maildir('alice'); return m.length ? m : undefined; }, 'the bounce');
  assert.equal(sink.transactions.length, 0);
  assert.ok(!sink.commands.flat().some((c) => c.startsWith('RCPT')), 'no RCPT was sent');
  assert.doesNotMatch(bounce!, /\?\?/);
  assert.match(bounce!, /^Content-Type: message\/global-delivery-status$/m);
  assert.match(bounce!, /^Final-Recipient: utf-8; jörg@remote\.test$/m);
  assert.match(bounce!, /^Status: 5\.6\.7$/m);
  assert.match(bounce!, /^jörg@remote\.test: Non-ASCII addresses not permitted/m);
  await host.daemon.waitForLog(/mta delivery .*result="PermFail"/);
});

test('a next hop without SMTPUTF8 never gets UTF-8 headers either: 5.6.9 (RFC 6531 §3.2); ASCII headers go without SMTPUTF8', async (t) => {
  const { sink, host } = await relayHost(t, {});
  const r1 = await send(host.port, 'MAIL FROM:<alice@example.test> SMTPUTF8', ['x@remote.test'], 'Subject: grüße\r\n\r\nhallo');
  assert.equal(r1.at(-1)!.code, 250, JSON.stringify(r1));
  const [bounce] = await eventually(async () => { const m = await host.maildir('alice'); return m.length ? m : undefined; }, 'the bounce');
  assert.match(bounce!, /^Status: 5\.6\.9$/m);
  assert.match(bounce!, /^Final-Recipient: rfc822; x@remote\.test$/m);
  assert.equal(sink.transactions.length, 0);
  // headers in ASCII, 8-bit text only in the body: nothing needs SMTPUTF8, the message goes
  const r2 = await send(host.port, 'MAIL FROM:<alice@example.test> SMTPUTF8', ['y@remote.test'], 'Subject: plain\r\n\r\ngrüße');
  assert.equal(r2.at(-1)!.code, 250);
  const tx = await eventually(async () => sink.transactions[0], 'the relayed message');
  assert.equal(tx.mail, 'MAIL FROM:<alice@example.test>');
});

test('a next hop\'s UTF-8 reply reaches the bounce as it was written (RFC 6531 §3.7.4.2), not as mojibake', async (t) => {
  const { host } = await relayHost(t, { caps: ['PIPELINING', 'SMTPUTF8'], rcpt: () => '550 5.1.1 Postfach unbekannt: jörg, grüße' });
  const replies = await send(host.port, 'MAIL FROM:<alice@example.test> SMTPUTF8', ['jörg@remote.test'], 'Subject: hi\r\n\r\nhallo');
  assert.equal(replies.at(-1)!.code, 250, JSON.stringify(replies));
  const [bounce] = await eventually(async () => { const m = await host.maildir('alice'); return m.length ? m : undefined; }, 'the bounce');
  assert.match(bounce!, /^Diagnostic-Code: smtp; 550 5\.1\.1 Postfach unbekannt: jörg, grüße$/m);
  await host.daemon.waitForLog(/mta delivery .*stat="550 5\.1\.1 Postfach unbekannt: jörg, grüße"/);
});

test('a bounce to a UTF-8 sender reaches it (its alias), addressed in UTF-8', async (t) => {
  const { host } = await relayHost(t, { caps: ['PIPELINING', 'SMTPUTF8'], rcpt: () => '550 5.1.1 unknown' });
  const replies = await send(host.port, 'MAIL FROM:<émile@example.test> SMTPUTF8', ['x@remote.test'], 'Subject: hi\r\n\r\nhallo');
  assert.equal(replies.at(-1)!.code, 250, JSON.stringify(replies));
  const [bounce] = await eventually(async () => { const m = await host.maildir('alice'); return m.length ? m : undefined; }, 'the bounce');
  assert.match(bounce!, /^To: <émile@example\.test>$/m);
  assert.match(bounce!, /^Delivered-To: émile@example\.test$/m);
  assert.match(bounce!, /^Content-Type: message\/global-delivery-status$/m);
});
