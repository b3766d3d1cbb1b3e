/**
 * Issue 17, `senders <t> [masquerade]`: MAIL FROM of an authenticated user must match an entry of
 * their mailaddrmap list as lka_mailaddrmap()/mailaddr_match() match it (`@` any, `@domain` with
 * hostname_match()'s `*`, `user` in any domain, tags), else `530 Sender rejected`; with
 * masquerade, every address of From: becomes the envelope sender (header_domain_append_callback()
 * and header_address_rewrite_buffer()).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { masqueradeFrom, rewriteAddress } from '../../src/smtp/masquerade.js';
import { hostnameMatch, senderMatches } from '../../src/lka/senders.js';
import { HeaderScan } from '../../src/smtp/header-scan.js';
import { eventually, startMailHost, type MailHost } from '../harness/mail.js';
import { makeTestPki, type TestPki } from '../harness/certs.js';
import { freePort, SmtpTestClient } from '../harness/net.js';

test('header_address_rewrite_buffer(): the bracketed address, else the last word outside comments; groups and broken text unchanged', () => {
  assert.equal(rewriteAddress(' "Alice L." <someone@else.test>\r\n', 'a@x.test'), ' "Alice L." <a@x.test>\r\n');
  assert.equal(rewriteAddress(' someone@else.test (Alice)\r\n', 'a@x.test'), ' a@x.test (Alice)\r\n');
  assert.equal(rewriteAddress(' undisclosed: ;', 'a@x.test'), ' undisclosed: ;');
  assert.equal(rewriteAddress(' "unbalanced <x@y>', 'a@x.test'), ' "unbalanced <x@y>');
  assert.equal(masqueradeFrom(' "Doe, John" <j@d.test>, bob@b.test\r\n', 'a@x.test'), ' "Doe, John" <a@x.test>, a@x.test\r\n');
});

test('hostname_match() and mailaddr_match(): one label per *, tags, user-only and catch-all entries', () => {
  assert.equal(hostnameMatch('sub.example.org', '*.example.org'), true);
  assert.equal(hostnameMatch('a.b.example.org', '*.example.org'), false);
  assert.equal(hostnameMatch('EXAMPLE.org', 'example.ORG'), true);
  assert.equal(senderMatches('alice+lists@example.test', 'alice@example.test', '+'), true);
  assert.equal(senderMatches('alice+lists@example.test', 'alice+news@example.test', '+'), false);
  assert.equal(senderMatches('alice@anywhere.test', 'alice', '+'), true);
  assert.equal(senderMatches('', '@', '+'), true);
  assert.equal(senderMatches('', '@example.test', '+'), false);
});

test('a From: folded over lines is held and rewritten whole; other headers and the body pass as they are', () => {
  const scan = new HeaderScan({ addHeaders: null, domain: 'mx.example.test', masquerade: 'alice@example.test' });
  const input = 'Subject: x\r\nFrom: "A" <a@b.test>,\r\n c@d.test\r\nTo: t@t.test\r\n\r\nFrom: not a header\r\n';
  const out = Buffer.concat([...scan.push(Buffer.from(input.slice(0, 20))), ...scan.push(Buffer.from(input.slice(20))), ...scan.end()]).toString();
  assert.equal(out, 'Subject: x\r\nFrom: "A" <alice@example.test>,\r\n alice@example.test\r\nTo: t@t.test\r\n\r\nFrom: not a header\r\n');
});

let host: MailHost;
let pki: TestPki;
let ports: { masquerade: number; plain: number };

before(async () => {
  pki = await makeTestPki();
  const mx = await pki.issue('mx.example.test');
  await writeFile(join(pki.dir, 'creds'), `alice ${execFileSync('openssl', ['passwd', '-6', 'alice-secret']).toString().trim()}\n`);
  await writeFile(join(pki.dir, 'senders'), 'alice alice@example.test, @*.example.org\n');
  ports = { masquerade: await freePort(), plain: await freePort() };
  host = await startMailHost({
    extra: [
      `pki mx.example.test cert "${mx.cert}"`,
      `pki mx.example.test key "${mx.key}"`,
      `table creds file:${join(pki.dir, 'creds')}`,
      `table sendermap file:${join(pki.dir, 'senders')}`,
      `listen on 127.0.0.1 port ${ports.masquerade} smtps pki mx.example.test auth <creds> senders <sendermap> masquerade hostname mx.example.test`,
      `listen on 127.0.0.1 port ${ports.plain} smtps pki mx.example.test auth <creds> senders <sendermap> hostname mx.example.test`,
    ].join('\n'),
  });
});
after(async () => {
  await host.stop();
});

async function session(port: number): Promise<SmtpTestClient> {
  const ca = await readFile(pki.ca);
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'mx.example.test', ca }, () => resolve(s));
    s.once('error', reject);
  });
  const c = SmtpTestClient.over(socket);
  await c.reply();
  await c.cmd('EHLO client.test');
  assert.equal((await c.cmd(`AUTH PLAIN ${Buffer.from('\0alice\0alice-secret').toString('base64')}`)).code, 235);
  return c;
}

test('senders: MAIL FROM must match the user\'s entries; anything else is 530 Sender rejected', async () => {
  const c = await session(ports.plain);
  try {
    for (const [sender, code] of [
      ['alice@example.test', 250], ['alice+tag@example.test', 250], ['someone@sub.example.org', 250],
      ['someone@a.b.example.org', 530], ['bob@example.test', 530], ['', 530],
    ] as const) {
      const r = await c.cmd(`MAIL FROM:<${sender}>`);
      assert.equal(r.code, code, `${sender}: ${r.lines[0]}`);
      if (code === 530) assert.match(r.lines[0]!, /^530 5\.7\.0 Sender rejected$/);
      else await c.cmd('RSET');
    }
  } finally {
    c.close();
  }
});

async function sendFrom(port: number, subject: string): Promise<string> {
  const c = await session(port);
  try {
    assert.equal((await c.cmd('MAIL FROM:<alice@example.test>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<bob@example.test>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    assert.equal((await c.cmd(`From: "Alice L." <someone@else.test>,\r\n bob@else.test\r\nSubject: ${subject}\r\n\r\nFrom: the body\r\n.`)).code, 250);
  } finally {
    c.close();
  }
  const [msg] = await eventually(async () => {
    const m = (await host.maildir('bob')).filter((x) => x.includes(`Subject: ${subject}`));
    return m.length ? m : undefined;
  }, `delivery of ${subject}`);
  return msg!;
}

test('masquerade: every address of From: becomes the envelope sender; without it From: is left alone', async () => {
  const masked = await sendFrom(ports.masquerade, 'masqueraded');
  assert.match(masked, /^From: "Alice L\." <alice@example\.test>,\r?\n alice@example\.test\r?\n/m);
  assert.match(masked, /^From: the body/m);
  const plain = await sendFrom(ports.plain, 'as-written');
  assert.match(plain, /^From: "Alice L\." <someone@else\.test>,\r?\n bob@else\.test\r?\n/m);
});
