/**
 * `postgres:` tables against the machine's PostgreSQL, in table-postgres' config format
 * (config_load(), config_connect(), table_postgres_lookup()/fetch() of OpenSMTPD-extras).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pgAdmin, PG_ADMIN, uniqueName } from '../harness/databases.js';
import { peerSkip } from '../harness/peers.js';
import { parseConninfo } from '../../src/table/pg-conninfo.js';
import { openTable } from '../../src/table/table.js';
import { databaseTableSuite, tempfail } from './database-suite.js';
import { tempDir } from './helpers.js';

const skip = peerSkip('postgresql');
const SERVICES = ['alias', 'domain', 'credentials', 'userinfo', 'string', 'mailaddrmap'];

async function kvTable(entries: [string, string][]): Promise<{ name: string; drop: () => Promise<void> }> {
  const name = uniqueName('tsmtpd_kv');
  await pgAdmin(async (c) => {
    await c.query(`CREATE TABLE ${name} (k TEXT PRIMARY KEY, v TEXT NOT NULL)`);
    for (const [k, v] of entries) await c.query(`INSERT INTO ${name} VALUES ($1, $2)`, [k.toLowerCase(), v]);
  });
  return { name, drop: () => pgAdmin((c) => c.query(`DROP TABLE IF EXISTS ${name}`)).then(() => undefined) };
}

databaseTableSuite({
  backend: 'postgres',
  port: PG_ADMIN.port,
  async create(entries) {
    const { name, drop } = await kvTable(entries);
    return {
      // `key: value` and `key value` both read, as config_load() takes either
      conf: (port) => [`conninfo: host=127.0.0.1 port=${port} user='${PG_ADMIN.user}' dbname=${PG_ADMIN.database} connect_timeout=2`,
        ...SERVICES.map((s) => `query_${s} SELECT v FROM ${name} WHERE k = $1`)].join('\n') + '\n',
      drop,
    };
  },
}, skip);

test('conninfo: keyword pairs with quotes and escapes, or a URI; an unknown keyword is an error', () => {
  assert.deepEqual(parseConninfo(`host='db.example.com' user = maildba password='it\\'s' dbname=mail port=5433`),
    { host: 'db.example.com', user: 'maildba', password: "it's", database: 'mail', port: 5433 });
  assert.deepEqual(parseConninfo('postgresql://u@h:1/d'), { connectionString: 'postgresql://u@h:1/d' });
  assert.throws(() => parseConninfo('hots=x'), /invalid connection option "hots"/);
  assert.throws(() => parseConninfo("host='x"), /unterminated/);
});

test('postgres: the extras column shapes, a wrong query refused at open, fetch_source handed out in turn', { skip }, async (t) => {
  const dir = await tempDir(t);
  const users = uniqueName('tsmtpd_users');
  const sources = uniqueName('tsmtpd_src');
  t.after(() => pgAdmin((c) => c.query(`DROP TABLE IF EXISTS ${users}, ${sources}`)).then(() => undefined));
  await pgAdmin(async (c) => {
    await c.query(`CREATE TABLE ${users} (email TEXT, password TEXT, uid INT, gid INT, home TEXT, alias TEXT)`);
    await c.query(`INSERT INTO ${users} VALUES ('bob@example.com', '$2b$08$hash', 1001, 1002, '/var/vmail/bob', 'bob'), ('bob@example.com', 'x', 1, 1, '/', 'robert@example.net')`);
    await c.query(`CREATE TABLE ${sources} (addr TEXT)`);
    await c.query(`INSERT INTO ${sources} VALUES ('192.0.2.1'), ('192.0.2.2')`);
  });
  const conf = join(dir, 'pg.conf');
  const base = [`conninfo host=127.0.0.1 port=${PG_ADMIN.port} user=${PG_ADMIN.user} dbname=${PG_ADMIN.database}`,
    `query_alias SELECT alias FROM ${users} WHERE email=$1 ORDER BY uid DESC`,
    `query_credentials SELECT email, password FROM ${users} WHERE email=$1 AND uid > 1000`,
    `query_userinfo SELECT uid, gid, home FROM ${users} WHERE email=$1 AND uid > 1000`,
    `query_domain SELECT split_part(email, '@', 2) FROM ${users} WHERE split_part(email, '@', 2) = $1`,
    `fetch_source SELECT addr FROM ${sources}`];
  await writeFile(conf, base.join('\n'));
  const table = await openTable({ name: 't', backend: 'postgres', config: conf });
  t.after(() => table.close());
  assert.deepEqual(await table.lookupAlias('Bob@Example.com'), [{ kind: 'username', value: 'bob' }, { kind: 'address', value: 'robert@example.net' }]);
  assert.deepEqual(await table.lookupCredentials('bob@example.com'), { username: 'bob@example.com', hash: '$2b$08$hash' });
  assert.deepEqual(await table.lookupUserinfo('bob@example.com'), { username: 'bob@example.com', uid: 1001, gid: 1002, directory: '/var/vmail/bob' });
  assert.equal(await table.match('domain', 'example.com'), true);
  // a service without its query answers -1 there: a tempfail, not a miss
  await assert.rejects(table.match('netaddr', '192.0.2.1'), (e) => tempfail(e) && /has no query_netaddr/.test((e as Error).message));
  const picked = [await table.fetchSource(), await table.fetchSource(), await table.fetchSource()];
  assert.deepEqual(picked, ['192.0.2.1', '192.0.2.2', '192.0.2.1']);

  await writeFile(conf, [...base, `query_mailaddr SELECT nope FROM ${users} WHERE email=$1`].join('\n'));
  await assert.rejects(openTable({ name: 't', backend: 'postgres', config: conf }), /preparing statements: column "nope" does not exist/);
  await assert.rejects(table.update(), /column "nope" does not exist/);
  assert.equal(await table.match('domain', 'example.com'), true);
});
