/**
 * Issue 15 item 8: the header changes of OpenSMTPD 7.8's smtp_tx_dataline(), through a daemon.
 * On every listener Bcc: is left out and the To:, Cc: and From: addresses without a domain get the
 * listener's hostname (header_domain_append_callback); Date: and Message-ID: are added, when
 * missing, only on the local socket and on port 587 (`listener->local || port == 587`).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, sendMessage, startMailHost, type MailHost } from '../harness/mail.js';
import { SmtpTestClient } from '../harness/net.js';

const IS_ROOT = process.getuid?.() === 0;
let host: MailHost;

before(async () => {
  host = await startMailHost({
    users: ['alice', 'bob', 'carol'],
    // port 587 needs root; a loopback address of its own keeps it clear of anything else
    extra: IS_ROOT ? 'listen on 127.0.0.15 port 587 hostname sub.example.test' : '',
  });
});
after(async () => {
  await host?.stop();
});

const MESSAGE = (subject: string) => ['From: root', 'To: bob, "Carol C." <carol>', 'Cc: alice@example.test,', '\tdave', 'Bcc: secret@example.test,', ' other@example.test', `Subject: ${subject}`, '', 'Bcc: stays in the body', ''].join('\r\n');

const headerOf = (msg: string) => msg.slice(0, msg.indexOf('\n\n'));
const delivered = (subject: string) => eventually(async () => (await host.maildir('bob')).find((m) => m.includes(`Subject: ${subject}`)), subject);

test('port 25-style listener: Bcc left out, bare addresses completed with its hostname, no Date or Message-ID added', async () => {
  const r = await sendMessage(host.port, 's@client.test', ['bob@example.test'], MESSAGE('hdr-mx'));
  assert.equal(r.at(-1)!.code, 250, JSON.stringify(r));
  const head = headerOf(await delivered('hdr-mx'));
  assert.doesNotMatch(head, /Bcc|secret|other@/);
  assert.match(head, /^From: root@mx\.example\.test$/m);
  assert.match(head, /^To: bob@mx\.example\.test, "Carol C\." <carol@mx\.example\.test>$/m);
  assert.match(head, /^Cc: alice@example\.test,\n\tdave@mx\.example\.test$/m);
  assert.doesNotMatch(head, /^(Date|Message-ID):/mi);
  assert.match(await delivered('hdr-mx'), /\n\nBcc: stays in the body\n/);
});

test('port 587: Date then Message-ID added before the blank line when missing', { skip: !IS_ROOT && 'binding port 587 needs root' }, async () => {
  const c = await SmtpTestClient.connect(587, '127.0.0.15');
  try {
    await c.reply();
    await c.cmd('EHLO client.example.test');
    assert.equal((await c.cmd('MAIL FROM:<s@client.test>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<bob@example.test>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    assert.equal((await c.cmd(`${MESSAGE('hdr-587')}.`)).code, 250);
  } finally {
    c.close();
  }
  const head = headerOf(await delivered('hdr-587'));
  assert.match(head, /^To: bob@sub\.example\.test, /m);
  assert.match(head, /\nSubject: hdr-587\nDate: [A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\nMessage-ID: <[0-9a-f]{16}@sub\.example\.test>$/);
  // the client's own are kept and not doubled
  const c2 = await SmtpTestClient.connect(587, '127.0.0.15');
  try {
    await c2.reply();
    await c2.cmd('EHLO client.example.test');
    await c2.cmd('MAIL FROM:<s@client.test>');
    await c2.cmd('RCPT TO:<bob@example.test>');
    await c2.cmd('DATA');
    assert.equal((await c2.cmd('Date: Mon, 5 Jan 2026 07:08:09 +0000\r\nMessage-Id: <mine@client.test>\r\nSubject: hdr-own\r\n\r\nx\r\n.')).code, 250);
  } finally {
    c2.close();
  }
  const own = headerOf(await delivered('hdr-own'));
  assert.equal(own.match(/^Date:/gm)?.length, 1);
  assert.equal(own.match(/^Message-I[dD]:/gm)?.length, 1);
});
