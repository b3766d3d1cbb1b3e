/**
 * Issue 17: `listen ... auth <t>` against external tables, as OpenSMTPD's lka_authenticate()
 * does it. A table whose program registered the `auth` service (smtpd-tables(7)) is asked
 * `check|auth|ID|user:password` and its answer is the verdict (found: 235, not-found: 535,
 * error: a temporary failure); any other table is asked for the user's `credentials` and the
 * password is checked against the hash. Both tables here are `table-NAME` helpers found
 * through TSMTPD_LIBEXEC, run by the real daemon.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { startDaemon, type DaemonHandle } from '../harness/daemon.js';
import { makeTestPki, type TestPki } from '../harness/certs.js';
import { freePort, SmtpTestClient } from '../harness/net.js';
import { FIXTURES } from './helpers.js';

let daemon: DaemonHandle;
let pki: TestPki;
let dir: string;
const ports = { offloaded: 0, credentials: 0 };

async function helper(bin: string, name: string, script: string): Promise<void> {
  await writeFile(join(bin, `table-${name}`), `#!/bin/sh\nexec '${process.execPath}' '${join(FIXTURES, script)}' "$@"\n`);
  await chmod(join(bin, `table-${name}`), 0o755);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsmtpd-authtables-'));
  await chmod(dir, 0o755);
  const bin = join(dir, 'libexec');
  await mkdir(bin);
  await helper(bin, 'authkv', 'auth-table.mjs');
  await helper(bin, 'kv', 'table.mjs');
  await writeFile(join(dir, 'auth.json'), JSON.stringify({ alice: 'Open-Sesame' }));
  // the table runs as the lka's user: it appends what it was asked here
  await writeFile(join(dir, 'auth.json.requests'), '');
  await chmod(join(dir, 'auth.json.requests'), 0o666);
  const hash = execFileSync('openssl', ['passwd', '-6', 'bob-secret']).toString().trim();
  await writeFile(join(dir, 'creds.json'), JSON.stringify({ bob: `bob:${hash}` }));
  pki = await makeTestPki();
  const mx = await pki.issue('mx.example.test');
  ports.offloaded = await freePort();
  ports.credentials = await freePort();
  daemon = await startDaemon({
    dir,
    env: { TSMTPD_LIBEXEC: bin },
    config: [
      `pki mx.example.test cert "${mx.cert}"`,
      `pki mx.example.test key "${mx.key}"`,
      `table authd authkv:${join(dir, 'auth.json')}`,
      `table creds kv:${join(dir, 'creds.json')}`,
      `listen on 127.0.0.1 port ${ports.offloaded} smtps pki mx.example.test auth <authd> hostname mx.example.test`,
      `listen on 127.0.0.1 port ${ports.credentials} smtps pki mx.example.test auth <creds> hostname mx.example.test`,
      `action "local" maildir "${dir}/maildir"`,
      'match from local for local action "local"',
      '',
    ].join('\n'),
  });
});
after(async () => {
  await daemon?.stop();
  await daemon?.cleanup();
});

async function auth(port: number, user: string, password: string): Promise<number> {
  const ca = await readFile(pki.ca);
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'mx.example.test', ca }, () => resolve(s));
    s.once('error', reject);
  });
  const c = SmtpTestClient.over(socket);
  try {
    await c.reply();
    await c.cmd('EHLO client.test');
    return (await c.cmd(`AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString('base64')}`)).code;
  } finally {
    c.close();
  }
}

test('a table that registered auth gets check|auth|ID|user:password and decides (lka_authenticate)', async () => {
  assert.equal(await auth(ports.offloaded, 'alice', 'Open-Sesame'), 235);
  assert.equal(await auth(ports.offloaded, 'alice', 'open-sesame'), 535);
  assert.equal(await auth(ports.offloaded, 'nobody', 'Open-Sesame'), 535);
  // the table's error is LKA_TEMPFAIL: a temporary failure, not a refused password
  assert.equal(Math.floor((await auth(ports.offloaded, 'broken', 'x')) / 100), 4);
  const requests = (await readFile(join(dir, 'auth.json.requests'), 'utf8')).split('\n').filter(Boolean);
  assert.match(requests[0]!, /^table\|0\.1\|\d+(?:\.\d+)?\|authd\|check\|auth\|[^|]+\|alice:Open-Sesame$/);
  // never a credentials lookup: the table keeps its passwords
  assert.ok(requests.every((r) => r.split('|')[4] === 'check' && r.split('|')[5] === 'auth'), requests.join('\n'));
});

test('a table without the auth service is asked for credentials, and the hash is checked here', async () => {
  assert.equal(await auth(ports.credentials, 'bob', 'bob-secret'), 235);
  assert.equal(await auth(ports.credentials, 'bob', 'bob-Secret'), 535);
  assert.equal(await auth(ports.credentials, 'alice', 'Open-Sesame'), 535);
});
