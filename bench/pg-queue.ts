/**
 * The postgres queue's storage choices, measured on a scratch database of the machine's server:
 *  1. bodies as bytea (what the queue does) against large objects (lo_from_bytea/lo_get/lo_unlink):
 *     store, read back and delete, 4 KiB and 1 MiB, one writer;
 *  2. commits through the queue front, fs against postgres, 1 and 20 writers: what the shared
 *     queue adds per message.
 *
 *   npm run build && node dist/bench/pg-queue.js [admin-url] [seconds]
 *   (admin url default postgresql://postgres@127.0.0.1:5432/test; a database tsmtpd_bench_* is made and dropped)
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { systemClock } from '../src/clock.js';
import { configureLog } from '../src/log.js';
import type { QueueBackend } from '../src/queue/backend.js';
import { FsQueueBackend } from '../src/queue/fs.js';
import { PostgresQueueBackend } from '../src/queue/postgres.js';
import { sharedQueueSettings } from '../src/queue/pg-pool.js';
import { Queue } from '../src/queue/queue.js';

const admin = process.argv[2] ?? 'postgresql://postgres@127.0.0.1:5432/test';
const seconds = Math.min(10, Math.max(0.5, Number(process.argv[3] ?? 2)));
const MAX_OPS = 100_000;

const ENVELOPE = {
  kind: 'mta' as const, action: 'relay', hostname: 'mx.example.org', helo: 'c.example.net', clientAddress: '127.0.0.1',
  sender: 'a@example.net', rcpt: 'b@example.org', origRcpt: 'b@example.org', dsn: {}, smtputf8: false, junk: false,
  createdAt: 0, ttl: 345600, tries: 0, lastTry: 0, lastWarn: 0,
};

async function timed(fn: (i: number) => Promise<void>): Promise<number> {
  const end = Date.now() + seconds * 1000;
  const t0 = Date.now();
  let n = 0;
  while (Date.now() < end && n < MAX_OPS) await fn(n++);
  return n / ((Date.now() - t0) / 1000);
}

/** Store, read and delete one body at a time, each in its own transaction as the queue would. */
async function bodies(c: pg.Client, size: number): Promise<string[]> {
  const body = randomBytes(size);
  await c.query('CREATE TABLE IF NOT EXISTS b_bytea (id bigint PRIMARY KEY, body bytea NOT NULL)');
  await c.query('CREATE TABLE IF NOT EXISTS b_lo (id bigint PRIMARY KEY, body oid NOT NULL)');
  const tx = async (f: () => Promise<unknown>) => {
    await c.query('BEGIN');
    await f();
    await c.query('COMMIT');
  };
  const bytea = {
    store: await timed((i) => tx(() => c.query('INSERT INTO b_bytea VALUES ($1, $2)', [i, body]))),
    read: await timed(async (i) => void (await c.query('SELECT body FROM b_bytea WHERE id = $1', [i % 50]))),
    delete: await timed((i) => tx(() => c.query('DELETE FROM b_bytea WHERE id = $1', [i]))),
  };
  const lo = {
    store: await timed((i) => tx(() => c.query('INSERT INTO b_lo VALUES ($1, lo_from_bytea(0, $2))', [i, body]))),
    read: await timed(async (i) => void (await c.query('SELECT lo_get(body) FROM b_lo WHERE id = $1', [i % 50]))),
    // a large object outlives its row unless unlinked: the delete is two statements
    delete: await timed((i) => tx(async () => {
      await c.query('SELECT lo_unlink(body) FROM b_lo WHERE id = $1', [i]);
      await c.query('DELETE FROM b_lo WHERE id = $1', [i]);
    })),
  };
  await c.query('DROP TABLE b_bytea');
  await c.query('SELECT lo_unlink(body) FROM b_lo');
  await c.query('DROP TABLE b_lo');
  const kib = size / 1024;
  const row = (name: string, r: typeof bytea) =>
    `| ${kib} KiB | ${name} | ${r.store.toFixed(0)} | ${r.read.toFixed(0)} | ${r.delete.toFixed(0)} |`;
  return [row('bytea', bytea), row('large object', lo)];
}

async function commits(make: (spool: string) => QueueBackend, writers: number): Promise<number> {
  const spool = await mkdtemp(join(tmpdir(), 'tsmtpd-bench-pgq-'));
  const body = randomBytes(4096);
  const q = new Queue(make(spool), { spool, clock: systemClock, compression: false });
  await q.open();
  try {
    const end = Date.now() + seconds * 1000;
    const t0 = Date.now();
    let n = 0;
    await Promise.all(Array.from({ length: writers }, async () => {
      while (Date.now() < end && n < MAX_OPS) {
        const { msgid, path } = await q.create();
        await writeFile(path, body);
        await q.commit(msgid, [ENVELOPE], body.length);
        n++;
      }
    }));
    return n / ((Date.now() - t0) / 1000);
  } finally {
    await q.close();
    await rm(spool, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  configureLog({ sink: { write: () => {} } });
  const name = `tsmtpd_bench_${randomBytes(4).toString('hex')}`;
  const a = new pg.Client({ connectionString: admin });
  await a.connect();
  await a.query(`CREATE DATABASE ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  try {
    const c = new pg.Client({ connectionString: url.toString() });
    await c.connect();
    console.log('| body | stored as | store/s | read/s | delete/s |\n|---|---|---|---|---|');
    for (const size of [4096, 1024 * 1024]) for (const line of await bodies(c, size)) console.log(line);
    await c.end();
    console.log('\n| queue | writers | commits/s | ms per commit (1 writer) |\n|---|---|---|---|');
    const makers: [string, (spool: string) => QueueBackend][] = [
      ['fs', (spool) => new FsQueueBackend(spool)],
      ['postgres', (spool) => new PostgresQueueBackend(spool, sharedQueueSettings({ url: url.toString() }, spool))],
    ];
    for (const [kind, make] of makers) {
      for (const writers of [1, 20]) {
        const rate = await commits(make, writers);
        console.log(`| ${kind} | ${writers} | ${rate.toFixed(0)} | ${writers === 1 ? (1000 / rate).toFixed(2) : ''} |`);
      }
    }
  } finally {
    await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await a.end();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
