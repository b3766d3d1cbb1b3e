/**
 * STARTTLS, SMTPS and AUTH against a real daemon, with real clients: swaks and Python's smtplib
 * send mail over STARTTLS with AUTH; AUTH is not offered before TLS; `tls-require` refuses mail
 * in clear; SNI picks the certificate. (Commands pipelined after STARTTLS: test/security.)
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { eventually, startMailHost, type MailHost } from '../harness/mail.js';
import { makeTestPki, type TestPki } from '../harness/certs.js';
import { freePort, SmtpTestClient } from '../harness/net.js';
import { peerSkip } from '../harness/peers.js';

const run = promisify(execFile);
let host: MailHost;
let pki: TestPki;
let ports: { tlsRequired: number; smtps: number };

before(async () => {
  pki = await makeTestPki();
  const mx = await pki.issue('mx.example.test');
  const other = await pki.issue('other.example.test');
  const sha512 = execFileSync('openssl', ['passwd', '-6', 'alice-secret']).toString().trim();
  await writeFile(join(pki.dir, 'creds'), `alice ${sha512}\nbob ${bcrypt.hashSync('bob-secret', 8)}\n`);
  ports = { tlsRequired: await freePort(), smtps: await freePort() };
  host = await startMailHost({
    extra: [
      `pki mx.example.test cert "${mx.cert}"`,
      `pki mx.example.test key "${mx.key}"`,
      `pki other.example.test cert "${other.cert}"`,
      `pki other.example.test key "${other.key}"`,
      `table creds file:${join(pki.dir, 'creds')}`,
      `listen on 127.0.0.1 port %PORT% tls pki mx.example.test pki other.example.test auth-optional <creds> hostname mx.example.test`,
      `listen on 127.0.0.2 port ${ports.tlsRequired} tls-require pki mx.example.test auth <creds> hostname mx.example.test`,
      `listen on 127.0.0.1 port ${ports.smtps} smtps pki mx.example.test auth <creds> hostname mx.example.test`,
    ].join('\n'),
    listen: false,
  });
});
after(async () => {
  await host.stop();
});

test('swaks sends over STARTTLS with AUTH PLAIN (sha512-crypt hash)', { skip: peerSkip('swaks') }, async () => {
  const { stdout } = await run('swaks', ['--server', `127.0.0.1:${host.port}`, '--tls', '--tls-verify', '--tls-ca-path', pki.ca,
    '--tls-sni', 'mx.example.test', '--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', 'alice-secret',
    '--from', 'alice@example.test', '--to', 'bob@example.test', '--header', 'Subject: swaks-tls', '--helo', 'client.test']);
  assert.match(stdout, /235 2\.0\.0 Authentication succeeded/);
  const [msg] = await eventually(async () => { const m = (await host.maildir('bob')).filter((x) => x.includes('swaks-tls')); return m.length ? m : undefined; }, 'delivery');
  // the trace header says TLS and AUTH were used (RFC 3848 ESMTPSA)
  assert.match(msg!, /with ESMTPSA id [0-9a-f]{8}/);
  assert.match(msg!, /\(TLSv1\.3:/);
});

test("Python's smtplib sends over STARTTLS with AUTH LOGIN (bcrypt hash)", { skip: peerSkip('python3') }, async () => {
  const script = [
    'import smtplib, ssl',
    `ctx = ssl.create_default_context(cafile=${JSON.stringify(pki.ca)})`,
    `s = smtplib.SMTP("127.0.0.1", ${host.port}, local_hostname="client.test")`,
    // the name smtplib checks the certificate against and sends as SNI
    's._host = "mx.example.test"',
    's.ehlo()',
    'assert "auth" not in s.esmtp_features, "AUTH offered before TLS"',
    's.starttls(context=ctx)',
    's.ehlo()',
    's.user, s.password = "bob", "bob-secret"',
    'code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)',
    'assert code == 235, code',
    's.sendmail("bob@example.test", ["alice@example.test"], b"Subject: py-tls\\r\\n\\r\\nhello")',
    's.quit()',
  ].join('\n');
  await run('/usr/bin/python3', ['-c', script]);
  await eventually(async () => (await host.maildir('alice')).some((m) => m.includes('py-tls')), 'delivery');
});

test('a wrong password is 535 and AUTH is not offered in clear', async () => {
  const c = await SmtpTestClient.connect(host.port);
  try {
    await c.reply();
    const ehlo = await c.cmd('EHLO client.test');
    assert.ok(ehlo.lines.some((l) => l.includes('STARTTLS')));
    assert.ok(!ehlo.lines.some((l) => l.includes('AUTH')));
    assert.equal((await c.cmd('AUTH PLAIN AGFsaWNlAHdyb25n')).code, 502);
  } finally {
    c.close();
  }
  await assert.rejects(run('swaks', ['--server', `127.0.0.1:${host.port}`, '--tls', '--auth', 'PLAIN', '--auth-user', 'alice',
    '--auth-password', 'wrong', '--from', 'alice@example.test', '--to', 'bob@example.test', '--helo', 'client.test']),
  (err: { stdout?: string }) => /535 5\.7\.8 Authentication failed/.test(err.stdout ?? ''));
});

test('tls-require: no mail in clear, and AUTH required after TLS', async () => {
  const c = await SmtpTestClient.connect(ports.tlsRequired, '127.0.0.2');
  try {
    await c.reply();
    await c.cmd('EHLO client.test');
    assert.match((await c.cmd('MAIL FROM:<a@client.test>')).lines[0]!, /^530 5\.7\.0 Must issue a STARTTLS command first/);
  } finally {
    c.close();
  }
});

test('SNI picks the certificate of the name asked for; SMTPS handshakes first', async () => {
  const subject = (port: number, servername: string) => new Promise<string>((res, rej) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername, ca: execFileSync('cat', [pki.ca]) }, () => {
      const cn = s.getPeerCertificate().subject.CN;
      s.destroy();
      res(Array.isArray(cn) ? cn[0]! : cn!);
    });
    s.once('error', rej);
  });
  assert.equal(await subject(ports.smtps, 'mx.example.test'), 'mx.example.test');
  const { stdout } = await run('swaks', ['--server', `127.0.0.1:${host.port}`, '--tls', '--tls-sni', 'other.example.test',
    '--tls-get-peer-cert', '--quit-after', 'TLS', '--helo', 'client.test']);
  assert.match(stdout, /CN ?= ?other\.example\.test/);
});
