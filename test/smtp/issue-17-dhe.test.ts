/**
 * Issue 17, `pki NAME dhe auto|none`: with `auto` the listener offers the DHE suites, groups sized
 * to the key (libtls tls_config_set_dheparams("auto"), as smtp's ssl setup passes pki_dhe); with
 * `none`, the default, it offers none and a client that speaks only DHE is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { startMailHost } from '../harness/mail.js';
import { freePort } from '../harness/net.js';
import { peerSkip } from '../harness/peers.js';

/** A TLS 1.2 client that offers one DHE suite only: the cipher agreed, or the handshake's error. */
function dheOnly(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, maxVersion: 'TLSv1.2', ciphers: 'DHE-RSA-AES128-GCM-SHA256' }, () => {
      resolve(s.getCipher().name);
      s.destroy();
    });
    s.on('error', (err) => resolve(`error: ${err.message}`));
  });
}

test('pki dhe auto offers DHE; none (the default) does not', { skip: peerSkip('openssl') }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-dhe-'));
  // DHE-RSA needs an RSA key
  for (const n of ['auto', 'none']) {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${n}.example.test`,
      '-keyout', join(dir, `${n}.key`), '-out', join(dir, `${n}.crt`)], { stdio: 'ignore' });
  }
  const [auto, none] = [await freePort(), await freePort()];
  const host = await startMailHost({
    extra: [
      `pki auto.example.test cert "${join(dir, 'auto.crt')}"`,
      `pki auto.example.test key "${join(dir, 'auto.key')}"`,
      'pki auto.example.test dhe auto',
      `pki none.example.test cert "${join(dir, 'none.crt')}"`,
      `pki none.example.test key "${join(dir, 'none.key')}"`,
      `listen on 127.0.0.1 port ${auto} smtps pki auto.example.test`,
      `listen on 127.0.0.1 port ${none} smtps pki none.example.test`,
    ].join('\n'),
  });
  try {
    assert.equal(await dheOnly(auto), 'DHE-RSA-AES128-GCM-SHA256');
    assert.match(await dheOnly(none), /^error: /);
  } finally {
    await host.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
