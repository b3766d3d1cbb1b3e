/**
 * `db:` tables read the Berkeley DB hash files OpenSMTPD's makemap writes (fixtures made by the
 * real tool, see fixtures/bdb/README.md): every pair equals the text source, big-endian files
 * read the same, makemap -t set files are lists, and a damaged file is a BdbError, never a crash.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, readFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { BdbError, readBdbHash } from '../../src/table/bdb-hash.js';
import { readDb } from '../../src/table/db.js';
import { parseTableText } from '../../src/table/file-format.js';
import { openTable } from '../../src/table/table.js';
import { FIXTURES, tempDir } from './helpers.js';

const BDB = join(FIXTURES, 'bdb');
const bytes = (name: string) => readFile(join(BDB, name));
const text = async (name: string) => (await readFile(join(BDB, name), 'utf8'));

/** What makemap put in: the source file's entries (keys lowercased, values as written). */
async function expected(source: string, kind?: 'list' | 'map'): Promise<Map<string, string>> {
  const t = parseTableText(await text(source), source, kind);
  return t.kind === 'map' ? t.entries : new Map(t.keys.map((k) => [k, '']));
}

test('makemap -t aliases and plain maps: every pair as in the source, keys and values NUL-terminated', async () => {
  for (const name of ['aliases', 'big']) {
    const pairs = readBdbHash(await bytes(`${name}.db`));
    assert.ok(pairs.every(([k, v]) => k.at(-1) === 0 && v.at(-1) === 0), 'C strings with their NUL (makemap.c make_plain)');
    const got = readDb(join(BDB, `${name}.db`));
    assert.equal(got.kind, 'map');
    assert.deepEqual(new Map([...got.entries].sort()), new Map([...(await expected(name))].sort()), name);
  }
});

test('a value longer than a page is read from its overflow pages; 401 keys over chained bucket pages', async () => {
  const got = readDb(join(BDB, 'big.db'));
  assert.equal(got.entries.size, 401);
  const long = got.entries.get('longlist')!;
  assert.equal(long.length, 4598);
  assert.ok(long.endsWith('member199@example.org'));
});

test('a big-endian file (db5.3_load -c db_lorder=4321) reads like the native one', async () => {
  assert.deepEqual(readBdbHash(await bytes('big-be.db')).map(([k, v]) => [k.toString(), v.toString()]).sort(),
    readBdbHash(await bytes('big.db')).map(([k, v]) => [k.toString(), v.toString()]).sort());
});

test('makemap -t set files are lists (every value "<set>"), served with smtpd domain matching', async () => {
  const got = readDb(join(BDB, 'domains.db'));
  assert.equal(got.kind, 'list');
  assert.deepEqual([...got.entries.keys()].sort(), ['*.example.net', 'example.com', 'example.org']);
  const table = await openTable({ name: 'd', backend: 'db', config: join(BDB, 'domains.db') });
  assert.equal(await table.match('domain', 'EXAMPLE.org'), true);
  assert.equal(await table.match('domain', 'mx.example.net'), true);
  assert.equal(await table.match('domain', 'example.net'), false);
});

test('an aliases db expands through the table front: users, addresses, a quoted |command', async () => {
  const table = await openTable({ name: 'aliases', backend: 'db', config: join(BDB, 'aliases.db') });
  assert.deepEqual(await table.lookupAlias('postmaster'), [{ kind: 'username', value: 'root' }, { kind: 'address', value: 'bob@example.org' }]);
  assert.deepEqual(await table.lookupAlias('abuse'), [{ kind: 'command', value: '/usr/bin/logger abuse' }]);
  assert.deepEqual(await table.lookupAlias('MIXEDCASE'), [{ kind: 'username', value: 'alice' }]);
  assert.equal(await table.lookupAlias('nobody'), undefined);
});

test('a changed file is read again at the next lookup, as table_db_lookup() reopens on a new mtime', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'aliases.db');
  await copyFile(join(BDB, 'aliases.db'), path);
  const table = await openTable({ name: 'aliases', backend: 'db', config: path });
  assert.ok(await table.lookupAlias('root'));
  await copyFile(join(BDB, 'big.db'), path);
  await utimes(path, new Date(), new Date(Date.now() + 5000));
  assert.equal(await table.lookupAlias('root'), undefined);
  assert.deepEqual(await table.lookupAlias('user007@example.org'), [{ kind: 'username', value: 'mailbox007' }]);
});

test('files that are no Berkeley DB hash file are refused with a reason', async () => {
  assert.throws(() => readBdbHash(Buffer.alloc(4096)), /not a Berkeley DB file/);
  const btree = Buffer.from(await bytes('aliases.db'));
  btree.writeUInt32LE(0x053162, 12);
  assert.throws(() => readBdbHash(btree), /btree file: OpenSMTPD reads only hash files/);
  const bsd = Buffer.alloc(4096);
  bsd.writeUInt32BE(0x061561, 0);
  assert.throws(() => readBdbHash(bsd), /1\.85 hash file/);
  assert.throws(() => readDb(join(BDB, 'aliases')), /neither a Berkeley DB hash file nor a tsmtpd makemap file/);
});

test('property: a damaged file gives its pairs or a BdbError, never another error or a hang', async () => {
  const base = await bytes('big.db');
  fc.assert(fc.property(fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (edits) => {
    const damaged = Buffer.from(base);
    for (const [at, byte] of edits) damaged[at] = byte;
    try {
      readBdbHash(damaged);
    } catch (err) {
      assert.ok(err instanceof BdbError, String(err));
    }
  }), { numRuns: 3000 });
});
