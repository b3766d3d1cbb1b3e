/**
 * Issue 17, `smtps verify` and `tls-require verify`: the client must present a certificate the
 * listener's `ca` vouches for, or the handshake fails (smtp.c: tls_config_verify_client()); a
 * verified client is `YES` in Received: and `cert-check result="verified"` in the log
 * (smtp_tls_started()).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { eventually, startMailHost, type MailHost } from '../harness/mail.js';
import { makeTestPki, type TestCert, type TestPki } from '../harness/certs.js';
import { freePort, SmtpTestClient } from '../harness/net.js';

let host: MailHost;
let pki: TestPki;
let client: TestCert;
let rogue: TestCert;
let ports: { smtps: number; starttls: number };

before(async () => {
  pki = await makeTestPki();
  const mx = await pki.issue('mx.example.test');
  client = await pki.issue('client.example.test');
  // the same name, from a CA the listener does not trust
  rogue = await (await makeTestPki()).issue('client.example.test');
  ports = { smtps: await freePort(), starttls: await freePort() };
  host = await startMailHost({
    extra: [
      `pki mx.example.test cert "${mx.cert}"`,
      `pki mx.example.test key "${mx.key}"`,
      `ca clients cert "${pki.ca}"`,
      `listen on 127.0.0.1 port ${ports.smtps} smtps verify pki mx.example.test ca clients hostname mx.example.test`,
      `listen on 127.0.0.1 port ${ports.starttls} tls-require verify pki mx.example.test ca clients hostname mx.example.test`,
    ].join('\n'),
  });
});
after(async () => {
  await host.stop();
});

async function options(cert?: TestCert): Promise<ConnectionOptions> {
  return {
    servername: 'mx.example.test', ca: await readFile(pki.ca),
    ...(cert ? { cert: await readFile(cert.cert), key: await readFile(cert.key) } : {}),
  };
}

/** The first line the server sends over TLS (the banner, or the EHLO reply after STARTTLS), or null when TLS fails. */
function firstLine(socket: import('node:tls').TLSSocket, write?: string): Promise<string | null> {
  return new Promise((resolve) => {
    let data = '';
    socket.once('secureConnect', () => { if (write) socket.write(write); });
    socket.on('data', (d) => {
      data += d.toString();
      if (data.includes('\r\n')) { resolve(data.split('\r\n')[0]!); socket.destroy(); }
    });
    socket.once('error', () => resolve(null));
    socket.once('close', () => resolve(null));
  });
}

test('smtps verify: no certificate, or one from another CA, ends the handshake; a vouched one gets the banner', async () => {
  assert.equal(await firstLine(tlsConnect({ host: '127.0.0.1', port: ports.smtps, ...(await options()) })), null);
  assert.equal(await firstLine(tlsConnect({ host: '127.0.0.1', port: ports.smtps, ...(await options(rogue)) })), null);
  assert.match((await firstLine(tlsConnect({ host: '127.0.0.1', port: ports.smtps, ...(await options(client)) }))) ?? '', /^220 mx\.example\.test /);
});

test('tls-require verify: STARTTLS without a certificate fails; with one, mail goes and Received says YES', async () => {
  const plain = await SmtpTestClient.connect(ports.starttls);
  await plain.reply();
  await plain.cmd('EHLO client.example.test');
  assert.equal((await plain.cmd('STARTTLS')).code, 220);
  assert.equal(await firstLine(tlsConnect({ socket: plain.socket, ...(await options()) }), 'EHLO client.example.test\r\n'), null);

  const c = await SmtpTestClient.connect(ports.starttls);
  await c.reply();
  await c.cmd('EHLO client.example.test');
  assert.equal((await c.cmd('STARTTLS')).code, 220);
  const secure = tlsConnect({ socket: c.socket, ...(await options(client)) });
  await new Promise<void>((resolve, reject) => { secure.once('secureConnect', resolve); secure.once('error', reject); });
  const s = SmtpTestClient.over(secure);
  assert.equal((await s.cmd('EHLO client.example.test')).code, 250);
  assert.equal((await s.cmd('MAIL FROM:<alice@example.test>')).code, 250);
  assert.equal((await s.cmd('RCPT TO:<bob@example.test>')).code, 250);
  assert.equal((await s.cmd('DATA')).code, 354);
  assert.equal((await s.cmd('Subject: verified\r\n\r\nhi\r\n.')).code, 250);
  s.close();
  const [msg] = await eventually(async () => {
    const m = (await host.maildir('bob')).filter((x) => x.includes('Subject: verified'));
    return m.length ? m : undefined;
  }, 'delivery');
  assert.match(msg!, /with ESMTPS id [0-9a-f]{8} \(TLSv1\.3:[\w-]+:\d+:YES\)/);
  assert.match(host.daemon.logs(), /smtp cert-check result="verified" fingerprint="SHA256:[0-9a-f]{64}"/);
});

