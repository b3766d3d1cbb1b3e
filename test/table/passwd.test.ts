/**
 * The passwd backend against OpenSMTPD-extras' table-passwd (table_passwd.c): credentials as
 * `user:hash`, userinfo as `uid:gid:home`, Dovecot passwd-file extra fields, comments, and AUTH
 * checked through the lka against such a file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { credentialsPassword, verifyPassword } from '../../src/lka/credentials.js';
import { parsePasswd } from '../../src/table/passwd.js';
import { openTable } from '../../src/table/table.js';
import { TableError } from '../../src/table/types.js';
import { tempDir } from './helpers.js';

// `openssl passwd -6 -salt saltsalt secret`: a hash this test needs no tool to make
const SECRET_HASH = '$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1';

const FILE = [
  '# Dovecot passwd-file shared with smtpd',
  `alice:${SECRET_HASH}:2000:2000::/var/vmail/alice::userdb_quota_rule=*:storage=1G`,
  `bob:${SECRET_HASH}:2001:2001:Bob:/var/vmail/bob:/sbin/nologin   # a trailing comment`,
  'carol::2002:2002::/var/vmail/carol:',
  'dave:$6$x$y:::::',
  '',
].join('\n');

test('credentials are user:hash and userinfo uid:gid:home (table_passwd_lookup)', async (t) => {
  const path = join(await tempDir(t), 'passwd');
  await writeFile(path, FILE);
  const table = await openTable({ name: 'users', backend: 'passwd', config: path });
  assert.deepEqual(await table.lookupCredentials('alice'), { username: 'alice', hash: `alice:${SECRET_HASH}` });
  assert.deepEqual(await table.lookupUserinfo('ALICE'), { username: 'ALICE', uid: 2000, gid: 2000, directory: '/var/vmail/alice' });
  assert.deepEqual(await table.lookupUserinfo('bob'), { username: 'bob', uid: 2001, gid: 2001, directory: '/var/vmail/bob' });
  assert.equal(await table.lookupCredentials('nobody'), undefined);
  // a field the service needs is missing: an error (smtpd returns -1, a temporary failure)
  await assert.rejects(table.lookupCredentials('carol'), TableError);
  await assert.rejects(table.lookupUserinfo('dave'), TableError);
  assert.deepEqual(await table.lookupUserinfo('carol'), { username: 'carol', uid: 2002, gid: 2002, directory: '/var/vmail/carol' });
});

test('AUTH takes the hash after the first colon (table_parse_lookup K_CREDENTIALS)', async (t) => {
  const path = join(await tempDir(t), 'passwd');
  await writeFile(path, FILE);
  const table = await openTable({ name: 'users', backend: 'passwd', config: path });
  const hash = credentialsPassword((await table.lookupCredentials('bob'))!.hash)!;
  assert.equal(await verifyPassword(hash, 'secret'), true);
  assert.equal(await verifyPassword(hash, 'wrong'), false);
  assert.equal(credentialsPassword('$2b$10$abcdefghijklmnopqrstuv'), '$2b$10$abcdefghijklmnopqrstuv', 'a bare hash as file tables hold it');
  assert.equal(credentialsPassword(':x'), undefined);
  assert.equal(credentialsPassword('x:'), undefined);
});

test('an entry with fewer than six fields makes the whole file invalid, at its line', () => {
  assert.throws(() => parsePasswd('ok:x:1:1::/h:\nbad:x:1\n', 'pw'), /pw:2: invalid entry/);
  assert.throws(() => parsePasswd(':x:1:1::/h:\n', 'pw'), /pw:1: invalid entry/);
  assert.equal(parsePasswd('# only a comment\n\n', 'pw').size, 0);
});

test('a broken file on update keeps the old entries serving', async (t) => {
  const path = join(await tempDir(t), 'passwd');
  await writeFile(path, FILE);
  const table = await openTable({ name: 'users', backend: 'passwd', config: path });
  await writeFile(path, 'broken\n');
  await assert.rejects(table.update(), /invalid entry/);
  assert.ok(await table.lookupUserinfo('alice'));
});
