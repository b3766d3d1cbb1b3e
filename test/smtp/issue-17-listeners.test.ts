/**
 * Issue 17, listener options at run time in a real daemon: `hostnames <t>` names the server per
 * local address in the banner, the EHLO reply and `Received: by` (smtp_lookup_servername() and
 * lka_addrname()); `mask-src` leaves the client out of `Received:` (F_MASK_SOURCE in
 * smtp_message_begin()); `received-auth` writes `auth=yes user=NAME` after the TLS parameters
 * (F_RECEIVEDAUTH).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { eventually, startMailHost, type MailHost } from '../harness/mail.js';
import { makeTestPki, type TestPki } from '../harness/certs.js';
import { freePort, SmtpTestClient } from '../harness/net.js';

let host: MailHost;
let pki: TestPki;
let port: number;
let smtps: number;

before(async () => {
  pki = await makeTestPki();
  const mx = await pki.issue('mx.example.test');
  await writeFile(join(pki.dir, 'creds'), `alice ${execFileSync('openssl', ['passwd', '-6', 'alice-secret']).toString().trim()}\n`);
  port = await freePort();
  smtps = await freePort();
  host = await startMailHost({
    listen: false,
    extra: [
      `pki mx.example.test cert "${mx.cert}"`,
      `pki mx.example.test key "${mx.key}"`,
      `table creds file:${join(pki.dir, 'creds')}`,
      'table names { 127.0.0.1 = first.example.test, 127.0.0.2 = second.example.test }',
      `listen on 127.0.0.1 port ${port} hostnames <names> mask-src hostname fallback.example.test`,
      `listen on 127.0.0.2 port ${port} hostnames <names> hostname fallback.example.test`,
      `listen on 127.0.0.3 port ${port} hostnames <names> hostname fallback.example.test`,
      `listen on 127.0.0.1 port ${smtps} smtps pki mx.example.test auth <creds> received-auth hostname mx.example.test`,
    ].join('\n'),
  });
});
after(async () => {
  await host.stop();
});

/** Send one message; the banner and the EHLO greeting are returned. */
async function send(c: SmtpTestClient, subject: string, login?: string): Promise<{ banner: string; ehlo: string }> {
  const banner = (await c.reply()).lines[0]!;
  const ehlo = (await c.cmd('EHLO client.example.test')).lines[0]!;
  if (login) assert.equal((await c.cmd(`AUTH PLAIN ${Buffer.from(`\0${login}`).toString('base64')}`)).code, 235);
  assert.equal((await c.cmd('MAIL FROM:<alice@example.test>')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<bob@example.test>')).code, 250);
  assert.equal((await c.cmd('DATA')).code, 354);
  assert.equal((await c.cmd(`Subject: ${subject}\r\n\r\nhello\r\n.`)).code, 250);
  await c.cmd('QUIT');
  c.close();
  return { banner, ehlo };
}

async function received(subject: string): Promise<string> {
  const [msg] = await eventually(async () => {
    const m = (await host.maildir('bob')).filter((x) => x.includes(`Subject: ${subject}`));
    return m.length ? m : undefined;
  }, `delivery of ${subject}`);
  return /^Received:[^\n]*\n(?:\t[^\n]*\n)*/m.exec(msg!)![0];
}

test('hostnames <t>: banner, EHLO and Received name the local address\'s name; mask-src hides the client', async () => {
  const first = await send(await SmtpTestClient.connect(port, '127.0.0.1'), 'first');
  assert.match(first.banner, /^220 first\.example\.test ESMTP/);
  assert.match(first.ehlo, /^250-first\.example\.test Hello client\.example\.test/);
  const masked = await received('first');
  assert.match(masked, /^Received: \r?\n\tby first\.example\.test \(tsmtpd\) with ESMTP id [0-9a-f]{8}/);
  assert.doesNotMatch(masked, /127\.0\.0\.1|client\.example\.test|from /);

  const second = await send(await SmtpTestClient.connect(port, '127.0.0.2'), 'second');
  assert.match(second.banner, /^220 second\.example\.test ESMTP/);
  const plain = await received('second');
  assert.match(plain, /^Received: from client\.example\.test \(\S+ \[127\.0\.0\.1\]\)\r?\n\tby second\.example\.test /);

  // an address the table does not name keeps the listener's hostname
  const third = await send(await SmtpTestClient.connect(port, '127.0.0.3'), 'third');
  assert.match(third.banner, /^220 fallback\.example\.test ESMTP/);
});

test('received-auth: auth=yes user=NAME after the TLS parameters', async () => {
  const ca = await readFile(pki.ca);
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port: smtps, servername: 'mx.example.test', ca }, () => resolve(s));
    s.once('error', reject);
  });
  await send(SmtpTestClient.over(socket), 'authenticated', 'alice\0alice-secret');
  assert.match(await received('authenticated'),
    /\n\tby mx\.example\.test \(tsmtpd\) with ESMTPSA id [0-9a-f]{8} \(TLSv1\.3:[\w-]+:\d+:NO\) auth=yes user=alice\r?\n/);
});
