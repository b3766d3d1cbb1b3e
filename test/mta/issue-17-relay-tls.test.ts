/**
 * Issue 17, relay actions: `pki` is the client certificate the mta presents, `ciphers` and
 * `protocols` bound its TLS, as mta_setup_dispatcher() sets them on its tls_config (ciphers: the
 * action's, else `smtp ciphers`; the pki's certificate and key as the keypair).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod } from 'node:fs/promises';
import { makeTestPki } from '../harness/certs.js';
import { eventually, sendMessage, startMailHost } from '../harness/mail.js';
import { peerSkip } from '../harness/peers.js';
import { Sink, type TestCert } from './sink.js';
import { readFile } from 'node:fs/promises';

test('relay pki, ciphers, protocols: the mta presents the certificate and speaks only what the action allows (mta_setup_dispatcher)', { skip: peerSkip('openssl') }, async () => {
  const pki = await makeTestPki();
  const client = await pki.issue('client.test');
  const server = await pki.issue('sink.test');
  await chmod(client.key, 0o600);
  // the sink asks for a client certificate and takes any: what it records is what was presented
  const tlsOpts = { cert: await readFile(server.cert, 'utf8'), key: await readFile(server.key, 'utf8'), requestCert: true, rejectUnauthorized: false };
  const sink = await Sink.start({ host: '127.0.0.1', smtps: true, cert: tlsOpts as TestCert });
  const host = await startMailHost({
    extra: [
      `pki client.test cert "${client.cert}"`,
      `pki client.test key "${client.key}"`,
      `action "plain" relay host smtps://127.0.0.1:${sink.port} tls no-verify`,
      `action "out" relay host smtps://127.0.0.1:${sink.port} tls no-verify pki client.test protocols "tlsv1.2" ciphers "ECDHE-ECDSA-AES128-GCM-SHA256"`,
    ].join('\n'),
    rules: 'match from any for domain "plain.test" action "plain"\nmatch from any for domain "remote.test" action "out"\nmatch from any for domain "example.test" action "local"',
  });
  try {
    assert.equal((await sendMessage(host.port, 'alice@example.test', ['x@plain.test'], 'Subject: a\r\n\r\nx\r\n')).at(-1)!.code, 250);
    await eventually(async () => sink.transactions.length >= 1 || undefined, 'the first relayed message', 20_000);
    assert.equal(sink.handshakes[0]!.peer, undefined, 'no pki: no client certificate');
    assert.equal(sink.handshakes[0]!.protocol, 'TLSv1.3');

    assert.equal((await sendMessage(host.port, 'alice@example.test', ['x@remote.test'], 'Subject: b\r\n\r\nx\r\n')).at(-1)!.code, 250);
    await eventually(async () => sink.transactions.length >= 2 || undefined, 'the second relayed message', 20_000);
    const last = sink.handshakes.at(-1)!;
    assert.deepEqual(last, { peer: 'client.test', protocol: 'TLSv1.2', cipher: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
  } finally {
    await host.stop();
    await sink.close();
  }
});
