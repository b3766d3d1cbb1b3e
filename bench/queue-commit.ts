/**
 * Commit throughput of the fs and sqlite queue backends with 1 and 20 concurrent writers and
 * 4 KiB bodies, against the disk's raw fsync rate: `node dist/bench/queue-commit.js [dir] [seconds]`.
 * fsyncs/message shows what group commit saves (sqlite's: its body files and directories, plus
 * one per transaction).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../src/clock.js';
import { configureLog } from '../src/log.js';
import { FsQueueBackend } from '../src/queue/fs.js';
import { Queue } from '../src/queue/queue.js';
import { SqliteQueueBackend } from '../src/queue/sqlite.js';

const base = process.argv[2] ?? tmpdir();
const seconds = Math.min(10, Math.max(0.5, Number(process.argv[3] ?? 2)));
const BODY = randomBytes(4096);
const MAX_COMMITS = 200_000;

const ENVELOPE = {
  kind: 'mta' as const, action: 'relay', hostname: 'mx.example.org', helo: 'c.example.net', clientAddress: '127.0.0.1',
  sender: 'a@example.net', rcpt: 'b@example.org', origRcpt: 'b@example.org', dsn: {}, smtputf8: false, junk: false,
  createdAt: 0, ttl: 345600, tries: 0, lastTry: 0, lastWarn: 0,
};

async function rawFsyncRate(dir: string): Promise<number> {
  const fh = await open(join(dir, 'fsync-probe'), 'w');
  const end = Date.now() + seconds * 1000;
  let n = 0;
  while (Date.now() < end && n < MAX_COMMITS) {
    await fh.write(BODY, 0, BODY.length, 0);
    await fh.sync();
    n++;
  }
  await fh.close();
  return n / seconds;
}

async function writer(q: Queue, end: number, counter: { n: number }): Promise<void> {
  while (Date.now() < end && counter.n < MAX_COMMITS) {
    const { msgid, path } = await q.create();
    await writeFile(path, BODY);
    await q.commit(msgid, [ENVELOPE], BODY.length);
    counter.n++;
  }
}

async function run(kind: 'fs' | 'sqlite', writers: number): Promise<string> {
  const spool = await mkdtemp(join(base, `tsmtpd-bench-${kind}-`));
  try {
    const backend = kind === 'fs' ? new FsQueueBackend(spool) : new SqliteQueueBackend(spool);
    let groups = 0;
    const commit = backend.commit.bind(backend);
    backend.commit = (batch) => (groups++, commit(batch));
    const q = new Queue(backend, { spool, clock: systemClock, compression: false });
    await q.open();
    const counter = { n: 0 };
    const t0 = Date.now();
    await Promise.all(Array.from({ length: writers }, () => writer(q, t0 + seconds * 1000, counter)));
    const elapsed = (Date.now() - t0) / 1000;
    await q.close();
    const fsyncs = backend.durable.fsyncs + (kind === 'sqlite' ? groups : 0);
    const perMsg = (fsyncs / Math.max(1, counter.n)).toFixed(2);
    return `${kind.padEnd(6)} writers=${String(writers).padEnd(2)} commits/s=${(counter.n / elapsed).toFixed(0).padStart(6)} ` +
      `msgs/group=${(counter.n / Math.max(1, groups)).toFixed(1).padStart(5)} fsyncs/msg=${perMsg}`;
  } finally {
    await rm(spool, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  configureLog({ sink: { write: () => {} } });
  const probe = await mkdtemp(join(base, 'tsmtpd-bench-fsync-'));
  try {
    console.log(`raw fsync rate (4 KiB rewrite + fsync): ${(await rawFsyncRate(probe)).toFixed(0)}/s in ${base}`);
  } finally {
    await rm(probe, { recursive: true, force: true });
  }
  for (const kind of ['fs', 'sqlite'] as const) for (const writers of [1, 20]) console.log(await run(kind, writers));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
