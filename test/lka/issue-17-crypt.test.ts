/**
 * Issue 17: passwords are checked as OpenSMTPD's crypt_checkpass() checks them — crypt(3) of the
 * password with the stored hash as setting must give the hash — through the system's own
 * crypt(3), so every scheme it supports works: yescrypt (`$y$`, Debian 12's default) and all the
 * others `mkpasswd -m help` lists. The hashes come from the system's own tools (mkpasswd,
 * openssl passwd, chpasswd), never from the code under test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { verifyPassword } from '../../src/lka/credentials.js';
import { CryptPool } from '../../src/lka/crypt-pool.js';
import { checkSystemPassword } from '../../src/lka/auth.js';
import { peerSkip } from '../harness/peers.js';

/** The schemes this machine's crypt(3) supports, as mkpasswd (whois) lists them. */
function mkpasswdMethods(): string[] {
  const out = execFileSync('mkpasswd', ['-m', 'help'], { encoding: 'utf8' });
  return out.split('\n').slice(1).map((l) => l.trim().split(/\s+/)[0]!).filter(Boolean);
}

const mkpasswd = (method: string, password: string) => execFileSync('mkpasswd', ['-m', method, '--stdin'], { input: password, encoding: 'utf8' }).trim();

test('every scheme mkpasswd makes with the system crypt(3) is checked: the right password passes, a wrong one fails',
  { skip: peerSkip('mkpasswd') }, async () => {
    const methods = mkpasswdMethods();
    assert.ok(methods.includes('yescrypt'), methods.join(' '));
    for (const method of methods) {
      // DES keeps 8 characters: the wrong password differs in its first
      const password = `p${randomBytes(3).toString('hex')}`;
      const hash = mkpasswd(method, password);
      assert.equal(await verifyPassword(hash, password), true, `${method}: ${hash}`);
      assert.equal(await verifyPassword(hash, `x${password.slice(1)}`), false, `${method}: wrong password`);
    }
  });

test('openssl passwd hashes (md5, sha256, sha512 crypt) are checked too', { skip: peerSkip('openssl') }, async () => {
  for (const flag of ['-1', '-5', '-6']) {
    const hash = execFileSync('openssl', ['passwd', flag, 'open-sesame']).toString().trim();
    assert.equal(await verifyPassword(hash, 'open-sesame'), true, hash);
    assert.equal(await verifyPassword(hash, 'open-sesamE'), false, hash);
  }
});

test('locked and empty hashes match nothing; a password with a NUL is refused, not cut', { skip: peerSkip('mkpasswd') }, async () => {
  const hash = mkpasswd('yescrypt', 'abc');
  assert.equal(await verifyPassword(`!${hash}`, 'abc'), false);
  assert.equal(await verifyPassword('*', ''), false);
  assert.equal(await verifyPassword('', ''), false);
  assert.equal(await verifyPassword(hash, 'abc\0def'), false);
});

test('the crypt pool checks yescrypt in its worker threads, several at once', { skip: peerSkip('mkpasswd') }, async () => {
  const pool = new CryptPool(2);
  try {
    const hash = mkpasswd('yescrypt', 'in-a-thread');
    const results = await Promise.all([0, 1, 2, 3].map((i) => pool.verify(hash, i % 2 ? 'in-a-thread' : 'not-this')));
    assert.deepEqual(results, [false, true, false, true]);
  } finally {
    await pool.close();
  }
});

test('a system account whose shadow entry chpasswd wrote as yescrypt authenticates (auth_passwd)',
  { skip: process.getuid?.() !== 0 ? 'needs root (useradd, /etc/shadow)' : false }, async (t) => {
    const user = `t17y${randomBytes(2).toString('hex')}`;
    execFileSync('useradd', ['--no-create-home', '--shell', '/usr/sbin/nologin', user]);
    t.after(() => void spawnSync('userdel', [user]));
    execFileSync('chpasswd', ['-c', 'YESCRYPT'], { input: `${user}:system-secret\n` });
    const shadow = execFileSync('getent', ['shadow', user], { encoding: 'utf8' });
    assert.match(shadow, new RegExp(`^${user}:\\$y\\$`));
    const pool = new CryptPool(1);
    try {
      assert.deepEqual(await checkSystemPassword(user, 'system-secret', pool), { result: 'pass' });
      assert.deepEqual(await checkSystemPassword(user, 'system-secreT', pool), { result: 'fail' });
    } finally {
      await pool.close();
    }
  });
