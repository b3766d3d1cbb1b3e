/**
 * `redis:` tables against the machine's Redis, in table-redis' config format (config_load(),
 * config_connect(), table_redis_check()/lookup() of OpenSMTPD-extras): default `GET service:%s`
 * commands, integer replies for checks, lists joined, and a slave asked when the master is away.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { redisAdmin, REDIS_PORT, uniqueName } from '../harness/databases.js';
import { freePort } from '../harness/net.js';
import { peerSkip } from '../harness/peers.js';
import { redisCommand } from '../../src/table/redis.js';
import { openTable } from '../../src/table/table.js';
import { databaseTableSuite } from './database-suite.js';
import { tempDir } from './helpers.js';

const skip = peerSkip('redis');
const SERVICES = ['alias', 'domain', 'credentials', 'userinfo', 'string', 'mailaddrmap'];

async function setKeys(prefix: string, entries: [string, string][]): Promise<() => Promise<void>> {
  await redisAdmin(async (c) => {
    for (const [k, v] of entries) await c.sendCommand(['SET', `${prefix}:${k.toLowerCase()}`, v]);
  });
  return () => redisAdmin(async (c) => {
    const keys = await c.sendCommand<string[]>(['KEYS', `${prefix}:*`]);
    if (keys.length) await c.sendCommand(['DEL', ...keys]);
  });
}

databaseTableSuite({
  backend: 'redis',
  port: REDIS_PORT,
  async create(entries) {
    const prefix = uniqueName('tsmtpd');
    const drop = await setKeys(prefix, entries);
    return { conf: (port) => [`master 127.0.0.1`, `master_port ${port}`, ...SERVICES.map((s) => `query_${s} GET ${prefix}:%s`)].join('\n') + '\n', drop };
  },
}, skip);

test('redis: %s is the key inside its argument, as hiredis formats it', () => {
  assert.deepEqual(redisCommand('GET alias:%s', 'bob'), ['GET', 'alias:bob']);
  assert.deepEqual(redisCommand('  HGET users %s  ', 'a b'), ['HGET', 'users', 'a b']);
});

test('redis: default commands, integer and list replies, user:hash credentials, the slave when the master is away', { skip }, async (t) => {
  const dir = await tempDir(t);
  const p = uniqueName('tsmtpd');
  t.after(() => redisAdmin(async (c) => {
    const keys = await c.sendCommand<string[]>(['KEYS', `${p}*`]);
    if (keys.length) await c.sendCommand(['DEL', ...keys]);
  }));
  await redisAdmin(async (c) => {
    await c.sendCommand(['SADD', `${p}domains`, 'example.com']);
    await c.sendCommand(['RPUSH', `${p}alias:postmaster`, 'alice', 'bob@example.net']);
    await c.sendCommand(['SET', `${p}cred:bob@example.com`, 'bob@example.com:$2b$08$hash']);
    await c.sendCommand(['RPUSH', `${p}user:bob`, '1001', '1002', '/home/bob']);
  });
  const conf = join(dir, 'redis.conf');
  const closed = await freePort();
  await writeFile(conf, [`master 127.0.0.1`, `master_port ${closed}`, `slave 127.0.0.1`, `slave_port ${REDIS_PORT}`,
    `query_domain SISMEMBER ${p}domains %s`, `query_alias LRANGE ${p}alias:%s 0 -1`,
    `query_credentials GET ${p}cred:%s`, `query_userinfo LRANGE ${p}user:%s 0 -1`].join('\n'));
  const table = await openTable({ name: 't', backend: 'redis', config: conf }, { timeoutMs: 1500 });
  t.after(() => table.close());
  // the slave connects in the background
  for (let i = 0; i < 100 && (await table.match('domain', 'example.com').catch(() => undefined)) !== true; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(await table.match('domain', 'example.com'), true);
  assert.equal(await table.match('domain', 'example.org'), false);
  assert.deepEqual(await table.lookupAlias('postmaster'), [{ kind: 'username', value: 'alice' }, { kind: 'address', value: 'bob@example.net' }]);
  assert.equal(await table.lookupAlias('nobody'), undefined);
  assert.deepEqual(await table.lookupCredentials('bob@example.com'), { username: 'bob@example.com', hash: '$2b$08$hash' });
  assert.deepEqual(await table.lookupUserinfo('bob'), { username: 'bob', uid: 1001, gid: 1002, directory: '/home/bob' });
});
