/**
 * The postgres queue backend: the shared suite (each spool gets its own database), then what only
 * a queue shared by nodes has to show: two nodes see one queue, a message goes with its last
 * envelope whichever nodes delete them, and a database that is not there is a QueueError (the
 * client's 451), not a hang or a crash.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer } from 'node:net';
import pg from 'pg';
import { QueueError } from '../../src/queue/queue.js';
import { parseConfig } from '../../src/config/parse.js';
import { recordFromText } from '../../src/queue/record-codec.js';
import { PostgresQueueBackend } from '../../src/queue/postgres.js';
import { sharedQueueSettings } from '../../src/queue/pg-pool.js';
import { PG_ADMIN_URL, pgDatabase, pgQuery, pgSkip } from '../harness/pg-db.js';
import { queueBackendSuite } from './conformance.js';
import { collect, makeQueue, newEnvelope, submit, tempDir } from './helpers.js';

const skip = await pgSkip();

/** One database per spool, so the suite's tests do not see each other's mail; all dropped at the end. */
const created = new Set<string>();
function urlFor(spool: string): string {
  const name = `tsmtpd_s_${createHash('sha256').update(spool).digest('hex').slice(0, 12)}`;
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

class SuiteBackend extends PostgresQueueBackend {
  override async open(): Promise<void> {
    const name = new URL(this.settings.url).pathname.slice(1);
    if (!created.has(name)) {
      created.add(name);
      await pgQuery(PG_ADMIN_URL, `CREATE DATABASE ${name}`);
    }
    await super.open();
  }
}

after(async () => {
  for (const name of created) await pgQuery(PG_ADMIN_URL, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
});

if (skip) {
  test('postgres queue backend', { skip }, () => {});
} else {
  queueBackendSuite('postgres', (spool) => new SuiteBackend(spool, sharedQueueSettings({ url: urlFor(spool) }, spool)), {
    persistent: true,
    async corruptEnvelope(b, evpid) {
      await (b as PostgresQueueBackend).pool.query('UPDATE tsmtpd_envelopes SET record = $1 WHERE evpid = $2', ['{"version":1,"id":3}', evpid]);
    },
    async rawEnvelope(b, evpid) {
      const res = await (b as PostgresQueueBackend).pool.query('SELECT record FROM tsmtpd_envelopes WHERE evpid = $1', [evpid]);
      const rec = recordFromText((res.rows[0] as { record: string }).record);
      return typeof rec === 'string' ? Buffer.from(rec) : rec;
    },
    async tamperBody(b, msgid) {
      await (b as PostgresQueueBackend).pool.query(
        'UPDATE tsmtpd_messages SET body = set_byte(body, length(body) / 2, get_byte(body, length(body) / 2) # 1) WHERE msgid = $1', [msgid]);
    },
  });
}

async function node(t: { after(fn: () => Promise<void>): void }, url: string) {
  const { dir, cleanup } = await tempDir('tsmtpd-pgq-');
  const backend = new PostgresQueueBackend(dir, sharedQueueSettings({ url }, dir));
  const q = makeQueue(backend, dir);
  await q.open();
  t.after(async () => {
    await q.close();
    await cleanup();
  });
  return { q, backend };
}

test('postgres: two nodes on one database share one queue: what A commits, B reads, delivers and removes', { skip }, async (t) => {
  const url = await pgDatabase(t);
  const a = await node(t, url);
  const b = await node(t, url);
  const body = randomBytes(300 * 1024);
  const envs = await submit(a.q, body, 2);
  assert.deepEqual((await collect(b.q.walk())).map((e) => e.id).sort(), envs.map((e) => e.id).sort());
  const h = await b.q.body(envs[0]!.msgid);
  assert.deepEqual(await readFile(h.path), body, 'the body is in the database, not in A\'s spool');
  await h.release();
  // the last two envelopes removed by two nodes at once: the message still goes with them
  await Promise.all([a.q.remove([envs[0]!.id]), b.q.remove([envs[1]!.id])]);
  assert.deepEqual(await collect(a.q.messages()), []);
  assert.deepEqual(await pgQuery(url, 'SELECT msgid FROM tsmtpd_messages'), []);
});

test('postgres: a commit is one transaction whose NOTIFY wakes the other nodes', { skip }, async (t) => {
  const url = await pgDatabase(t);
  const a = await node(t, url);
  const listener = new pg.Client({ connectionString: url });
  // the database is dropped under it at the end
  listener.on('error', () => undefined);
  await listener.connect();
  t.after(() => listener.end());
  await listener.query('LISTEN tsmtpd_queue');
  const woken = new Promise((resolve) => listener.once('notification', resolve));
  await submit(a.q, 'hello\r\n', 1);
  await woken;
  const rows = await pgQuery<{ next_try: string; lease_owner: string | null }>(url, 'SELECT next_try, lease_owner FROM tsmtpd_envelopes');
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.lease_owner, null, 'new mail is free for any node to claim');
});

test('postgres: no database is a QueueError io (the client\'s 451); connections the server dropped are replaced', { skip }, async (t) => {
  const url = await pgDatabase(t);
  const a = await node(t, url);
  await submit(a.q, 'before\r\n', 1);
  // a port where nothing listens stands for the database gone
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  const { dir, cleanup } = await tempDir('tsmtpd-pgq-');
  t.after(cleanup);
  const down = new PostgresQueueBackend(dir, sharedQueueSettings({ url: `postgresql://postgres@127.0.0.1:${port}/x` }, dir));
  await assert.rejects(makeQueue(down, dir).open(), (e: unknown) => e instanceof QueueError && e.code === 'io');
  // and one open node whose database stops answering: its commit fails whole
  await pgQuery(PG_ADMIN_URL, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [new URL(url).pathname.slice(1)]);
  const after = await submit(a.q, 'after a reconnect\r\n', 1);
  assert.equal(after.length, 1, 'the pool replaced the dropped connections');
});

test('postgres: queue url, node and lease in smtpd.conf; TSMTPD_QUEUE_URL when there is no url; no url at all is refused at open', async (t) => {
  const RULES = 'action "l" maildir\nmatch from any for any action "l"\n';
  const c = parseConfig(`queue url "postgresql://mail@db.example.org/q"\nqueue node "mx1"\nqueue lease 90s\n${RULES}`, { file: 'f.conf' });
  assert.deepEqual(sharedQueueSettings(c.queue, '/var/spool/tsmtpd', {}), { url: 'postgresql://mail@db.example.org/q', node: 'mx1', lease: 90 });
  const d = parseConfig(`queue compression\n${RULES}`, { file: 'f.conf' });
  const fromEnv = sharedQueueSettings(d.queue, '/var/spool/tsmtpd', { TSMTPD_QUEUE_URL: 'postgresql://x@y/z' });
  assert.equal(fromEnv.url, 'postgresql://x@y/z');
  assert.equal(fromEnv.lease, 60);
  assert.match(fromEnv.node, /:\/var\/spool\/tsmtpd$/, 'by default host and spool: two daemons of one host differ');
  assert.throws(() => parseConfig(`queue lease soon\n${RULES}`, { file: 'f.conf' }), /invalid delay/);
  const { dir, cleanup } = await tempDir('tsmtpd-pgq-');
  t.after(cleanup);
  const none = new PostgresQueueBackend(dir, sharedQueueSettings(d.queue, dir, {}));
  await assert.rejects(none.open(), /queue url/);
});

test('postgres: a failure report stored with the envelopes it is about removes them in the same commit (one report, whichever node dies when)', { skip }, async (t) => {
  const url = await pgDatabase(t);
  const a = await node(t, url);
  const failed = await submit(a.q, 'failed\r\n', 2);
  const kept = await submit(a.q, 'other\r\n', 1);
  const { dir, cleanup } = await tempDir('tsmtpd-pgq-');
  t.after(cleanup);
  await writeFile(join(dir, 'report'), 'the report\r\n');
  const report = await a.q.inject(join(dir, 'report'), [newEnvelope({ sender: '' })], failed.map((e) => e.id));
  assert.deepEqual((await collect(a.q.walk())).map((e) => e.id).sort(), [...report, ...kept].map((e) => e.id).sort());
  assert.deepEqual((await collect(a.q.messages())).sort(), [report[0]!.msgid, kept[0]!.msgid].sort(), 'the failed message went with its envelopes');
  // the caller's removal afterwards finds nothing left to do
  await a.q.remove(failed.map((e) => e.id));
});
