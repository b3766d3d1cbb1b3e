/** TableFront.match per service over real backends, file tables that reload, and the builtin tables of openTables. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { emptyConfig } from '../../src/config/defaults.js';
import type { TableDecl } from '../../src/config/types.js';
import { StaticBackend } from '../../src/table/static.js';
import { matchDomain, matchMailaddr, openTables, TableFront } from '../../src/table/table.js';

const where = { file: 'smtpd.conf', line: 7 };

async function listTable(values: string[], delim = '+'): Promise<TableFront> {
  const backend = new StaticBackend({ name: 't', config: '', inline: { kind: 'list', values } });
  await backend.open();
  return new TableFront('t', 'static', backend, delim);
}

async function mapTable(entries: [string, string][]): Promise<TableFront> {
  const backend = new StaticBackend({ name: 'm', config: '', inline: { kind: 'map', entries } });
  await backend.open();
  return new TableFront('m', 'static', backend);
}

test('domain: exact, wildcard, case, trailing dot and IDN forms', async () => {
  const t = await listTable(['example.com', '*.example.org', 'Bücher.example']);
  const cases: [string, boolean][] = [
    ['example.com', true], ['EXAMPLE.COM', true], ['example.com.', true], ['sub.example.com', false],
    ['a.example.org', true], ['a.b.example.org', true], ['example.org', false], ['example.org.evil', false],
    ['bücher.example', true], ['xn--bcher-kva.example', true], ['XN--BCHER-KVA.example', true], ['bucher.example', false],
  ];
  for (const [d, want] of cases) assert.equal(await t.match('domain', d), want, d);
  // regex metacharacters in an entry are literal
  assert.equal(matchDomain('a.b', 'axb'), false);
  assert.equal(matchDomain('*', 'anything.example'), true);
});

test('mailaddr: user@domain, @domain, bare user, wildcard domains and +tags', async () => {
  const t = await listTable(['user@example.com', '@example.org', 'postmaster', 'bob@*.example.net', 'tagged+x@example.com']);
  const cases: [string, boolean][] = [
    ['user@example.com', true], ['User@EXAMPLE.com', true], ['user+anything@example.com', true], ['other@example.com', false],
    ['user@example.comx', false], ['anyone@example.org', true], ['postmaster@anywhere.example', true], ['postmaster', true],
    ['bob@mx.example.net', true], ['bob@example.net', false], ['tagged+x@example.com', true], ['tagged+y@example.com', false],
    ['tagged@example.com', false], ['', false],
  ];
  for (const [a, want] of cases) assert.equal(await t.match('mailaddr', a), want, a);
  // another delimiter, and none
  assert.equal(matchMailaddr('user@example.com', 'user-ext@example.com', '-'), true);
  assert.equal(matchMailaddr('user@example.com', 'user+ext@example.com', ''), false);
});

test('netaddr through the front', async () => {
  const t = await listTable(['127.0.0.0/8', '[::1]', '192.0.2.10', 'local']);
  for (const [a, want] of [['127.9.9.9', true], ['::1', true], ['::ffff:127.0.0.1', true], ['192.0.2.10', true], ['192.0.2.11', false], ['local', true], ['2001:db8::1', false]] as const) {
    assert.equal(await t.match('netaddr', a), want, a);
  }
});

test('regex: entries are regular expressions, (?i) makes them case-blind, a broken one matches nothing', async () => {
  const t = await listTable(['^spam[0-9]+@', '(?i)\\.invalid$', '(unclosed']);
  assert.equal(await t.match('regex', 'spam42@example.com'), true);
  assert.equal(await t.match('regex', 'ham42@example.com'), false);
  assert.equal(await t.match('regex', 'x@host.INVALID'), true);
  assert.equal(await t.match('regex', '(unclosed'), false);
});

test('exact services answer by lookup; typed lookups parse their values', async () => {
  const m = await mapTable([
    ['alice', '$2b$10$hash'], ['root', 'bob, |/bin/cat, error:550 gone'], ['bob', '1000:1000:/home/bob'], ['broken', 'x:y:home'],
    ['sender', 'a@example.com, b@example.com'],
  ]);
  assert.equal(await m.match('credentials', 'alice'), true);
  assert.equal(await m.match('credentials', 'mallory'), false);
  assert.equal(await m.match('string', 'ALICE'), true);
  assert.deepEqual(await m.lookupCredentials('alice'), { username: 'alice', hash: '$2b$10$hash' });
  assert.equal(await m.lookupCredentials('nobody'), undefined);
  assert.deepEqual(await m.lookupAlias('root'), [{ kind: 'username', value: 'bob' }, { kind: 'command', value: '/bin/cat' }, { kind: 'error', code: 550, text: 'gone' }]);
  assert.equal(await m.lookupAlias('nobody'), undefined);
  assert.deepEqual(await m.lookupUserinfo('bob'), { username: 'bob', uid: 1000, gid: 1000, directory: '/home/bob' });
  assert.equal(await m.lookupUserinfo('broken'), undefined);
  assert.deepEqual(await m.lookupMailaddrMap('sender'), ['a@example.com', 'b@example.com']);
});

test('file tables load, reload, and keep their contents when the new file is broken', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsmtpd-table-'));
  try {
    const path = join(dir, 'aliases');
    writeFileSync(path, '# aliases\nroot: alice\nabuse alice, bob\n');
    const config = emptyConfig('smtpd.conf');
    const decl: TableDecl = { name: 'aliases', backend: 'file', config: `file:${path}`, where };
    config.tables.set('aliases', decl);
    const set = await openTables(config, 'mx.test');
    try {
      const t = set.get('aliases')!;
      assert.deepEqual(await t.lookupAlias('ROOT'), [{ kind: 'username', value: 'alice' }]);
      writeFileSync(path, 'root carol\n');
      await set.update('aliases');
      assert.deepEqual(await t.lookupAlias('root'), [{ kind: 'username', value: 'carol' }]);
      assert.equal(await t.lookupAlias('abuse'), undefined);
      writeFileSync(path, 'root carol\nlonely\n');
      await assert.rejects(set.update('aliases'), /aliases:2: /);
      assert.deepEqual(await t.lookupAlias('root'), [{ kind: 'username', value: 'carol' }]);
      await assert.rejects(set.update('nosuch'), /no such table/);
    } finally {
      await set.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('openTables: builtin tables, and a clear error for a missing file or backend', async () => {
  const config = emptyConfig('smtpd.conf');
  const set = await openTables(config, 'mx.test');
  try {
    const localhost = set.get('localhost')!;
    assert.equal(await localhost.match('netaddr', '127.0.0.1'), true);
    assert.equal(await localhost.match('netaddr', '::1'), true);
    assert.equal(await localhost.match('netaddr', 'local'), true);
    assert.equal(await localhost.match('netaddr', '192.0.2.200'), false);
    const anyhost = set.get('anyhost')!;
    for (const a of ['203.0.113.9', '2001:db8::1', 'local']) assert.equal(await anyhost.match('netaddr', a), true, a);
    const names = set.get('localnames')!;
    for (const d of ['localhost', 'MX.test', '[127.0.0.1]']) assert.equal(await names.match('domain', d), true, d);
    assert.equal(await names.match('domain', 'example.com'), false);
    assert.equal(await set.get('anydestination')!.match('domain', 'any.example'), true);
    assert.ok(set.get('getpwnam'));
    assert.equal(set.get('nosuch'), undefined);
  } finally {
    await set.close();
  }
  const missing = emptyConfig('smtpd.conf');
  missing.tables.set('gone', { name: 'gone', backend: 'file', config: '/nonexistent/tsmtpd/table', where });
  await assert.rejects(openTables(missing, 'mx.test'), /^Error: smtpd\.conf:7: table gone: /);
  const unknown = emptyConfig('smtpd.conf');
  unknown.tables.set('x', { name: 'x', backend: 'nosuchbackend', config: '', where });
  await assert.rejects(openTables(unknown, 'mx.test'), /smtpd\.conf:7: table x: backend "nosuchbackend" does not exist: no table-nosuchbackend in /);
});
