/**
 * `mysql:` tables against the machine's MariaDB, in table-mysql's config format (config_load(),
 * config_connect(), table_mysql_lookup()/fetch() of OpenSMTPD-extras).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mysqlAdmin, MYSQL_ADMIN, uniqueName } from '../harness/databases.js';
import { peerSkip } from '../harness/peers.js';
import { openTable } from '../../src/table/table.js';
import { databaseTableSuite } from './database-suite.js';
import { tempDir } from './helpers.js';

const skip = peerSkip('mariadb');
const SERVICES = ['alias', 'domain', 'credentials', 'userinfo', 'string', 'mailaddrmap'];
const login = (port: number) => [`host ${MYSQL_ADMIN.host}`, `port ${port}`, `username ${MYSQL_ADMIN.user}`, `database ${MYSQL_ADMIN.database}`];

databaseTableSuite({
  backend: 'mysql',
  port: MYSQL_ADMIN.port,
  async create(entries) {
    const name = uniqueName('tsmtpd_kv');
    await mysqlAdmin(async (c) => {
      await c.query(`CREATE TABLE ${name} (k VARCHAR(255) PRIMARY KEY, v TEXT NOT NULL)`);
      for (const [k, v] of entries) await c.execute(`INSERT INTO ${name} VALUES (?, ?)`, [k.toLowerCase(), v]);
    });
    return {
      conf: (port) => [...login(port), ...SERVICES.map((s) => `query_${s} SELECT v FROM ${name} WHERE k = ?`)].join('\n') + '\n',
      drop: () => mysqlAdmin((c) => c.query(`DROP TABLE IF EXISTS ${name}`)).then(() => undefined),
    };
  },
}, skip);

test('mysql: the extras column shapes, a wrong query refused at open, fetch_source handed out in turn', { skip }, async (t) => {
  const dir = await tempDir(t);
  const users = uniqueName('tsmtpd_users');
  const sources = uniqueName('tsmtpd_src');
  t.after(() => mysqlAdmin((c) => c.query(`DROP TABLE IF EXISTS ${users}, ${sources}`)).then(() => undefined));
  await mysqlAdmin(async (c) => {
    await c.query(`CREATE TABLE ${users} (email VARCHAR(255), password TEXT, uid INT, gid INT, home TEXT, alias TEXT)`);
    await c.query(`INSERT INTO ${users} VALUES ('bob@example.com', '$2b$08$hash', 1001, 1002, '/var/vmail/bob', 'bob'), ('bob@example.com', 'x', 1, 1, '/', 'robert@example.net')`);
    await c.query(`CREATE TABLE ${sources} (addr VARCHAR(64))`);
    await c.query(`INSERT INTO ${sources} VALUES ('192.0.2.1'), ('192.0.2.2')`);
  });
  const conf = join(dir, 'mysql.conf');
  const base = [...login(MYSQL_ADMIN.port),
    `query_alias SELECT alias FROM ${users} WHERE email=? ORDER BY uid DESC`,
    `query_credentials SELECT email, password FROM ${users} WHERE email=? AND uid > 1000`,
    `query_userinfo SELECT uid, gid, home FROM ${users} WHERE email=? AND uid > 1000`,
    `query_domain SELECT SUBSTRING_INDEX(email, '@', -1) FROM ${users} WHERE SUBSTRING_INDEX(email, '@', -1) = ?`,
    `fetch_source SELECT addr FROM ${sources}`];
  await writeFile(conf, base.join('\n'));
  const table = await openTable({ name: 't', backend: 'mysql', config: conf });
  t.after(() => table.close());
  assert.deepEqual(await table.lookupAlias('Bob@Example.com'), [{ kind: 'username', value: 'bob' }, { kind: 'address', value: 'robert@example.net' }]);
  assert.deepEqual(await table.lookupCredentials('bob@example.com'), { username: 'bob@example.com', hash: '$2b$08$hash' });
  assert.deepEqual(await table.lookupUserinfo('bob@example.com'), { username: 'bob@example.com', uid: 1001, gid: 1002, directory: '/var/vmail/bob' });
  assert.equal(await table.match('domain', 'example.com'), true);
  assert.equal(await table.match('domain', 'example.org'), false);
  assert.deepEqual([await table.fetchSource(), await table.fetchSource(), await table.fetchSource()], ['192.0.2.1', '192.0.2.2', '192.0.2.1']);

  await writeFile(conf, [...base, `query_mailaddr SELECT nope FROM ${users} WHERE email=?`].join('\n'));
  await assert.rejects(openTable({ name: 't', backend: 'mysql', config: conf }), /preparing statements: Unknown column 'nope'/);
  await assert.rejects(table.update(), /Unknown column 'nope'/);
  assert.equal(await table.match('domain', 'example.com'), true);
});
