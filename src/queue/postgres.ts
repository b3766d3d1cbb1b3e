/**
 * The postgres queue backend (`-B queue=postgres`): one queue that several nodes share. Bodies
 * and envelopes live in PostgreSQL; a body under reception is still written to the node's
 * incoming/ and goes into the database at commit, the whole group in one transaction whose
 * COMMIT is the fsync before the 250 (and wakes the other nodes with NOTIFY).
 *
 * Bodies are bytea, not large objects: a bytea row goes and comes in the same statement as its
 * message (one round trip, one transaction, no lo_unlink to forget: a deleted message frees its
 * body with its row), and TOAST stores it out of line and compressed. bench/pg-body.ts measures
 * the two; large objects only pay off for bodies over bytea's 1 GB, far above any message size.
 *
 * The envelope row also carries what the shared scheduler (src/scheduler/postgres.ts) needs to
 * hand it to exactly one node: when it is due, whether it is suspended, and who holds its lease.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import { nextTry } from '../scheduler/backoff.js';
import { checkSize, QueueError, type BodyHandle, type CommitItem, type QueueBackend, type WalkEntry } from './backend.js';
import { Durable } from './durable.js';
import { plainRecords, recordAsText, recordFromText, type RecordCodec } from './record-codec.js';
import { isEvpid, isMsgid, msgidOf, type Envelope } from './envelope.js';
import { acquirePool, checkUrl, query, releasePool, transaction, WAKE_CHANNEL, type SharedQueueSettings } from './pg-pool.js';
import { purgeScratch } from './scratch.js';

/** Times are seconds since the epoch, as the envelopes keep them. */
export const PG_SCHEMA = `
CREATE TABLE IF NOT EXISTS tsmtpd_messages (
  msgid text PRIMARY KEY,
  size bigint NOT NULL,
  body bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS tsmtpd_envelopes (
  evpid text PRIMARY KEY,
  msgid text NOT NULL REFERENCES tsmtpd_messages (msgid),
  record text NOT NULL,
  kind text NOT NULL,
  created_at bigint NOT NULL,
  expires_at bigint NOT NULL,
  tries integer NOT NULL,
  last_try bigint NOT NULL,
  last_warn bigint NOT NULL,
  next_try bigint NOT NULL,
  suspended boolean NOT NULL DEFAULT false,
  lease_owner text,
  lease_until bigint
);
CREATE INDEX IF NOT EXISTS tsmtpd_envelopes_msgid ON tsmtpd_envelopes (msgid);
CREATE INDEX IF NOT EXISTS tsmtpd_envelopes_due ON tsmtpd_envelopes (next_try) WHERE NOT suspended;
CREATE INDEX IF NOT EXISTS tsmtpd_envelopes_lease ON tsmtpd_envelopes (lease_owner) WHERE lease_owner IS NOT NULL;
CREATE TABLE IF NOT EXISTS tsmtpd_corrupt (id text NOT NULL, record text, reason text NOT NULL, at timestamptz NOT NULL DEFAULT now());
`;

/** Nodes starting together would race on CREATE TABLE IF NOT EXISTS: one creates, the others wait. */
export async function ensureSchema(pool: pg.Pool): Promise<void> {
  await transaction(pool, 'queue schema', async (c) => {
    await c.query(`SELECT pg_advisory_xact_lock(hashtext('tsmtpd_queue_schema'))`);
    await c.query(PG_SCHEMA);
  });
}

/** When a stored envelope is first due: new mail at once, reloaded mail when its retry falls due. */
function firstTry(e: Envelope): number {
  return e.tries === 0 ? e.createdAt : nextTry(e.kind, e.createdAt, e.tries, Math.max(e.lastTry, e.createdAt));
}

export class PostgresQueueBackend implements QueueBackend {
  readonly name = 'postgres';
  records: RecordCodec = plainRecords;
  readonly durable = new Durable();
  private handle: pg.Pool | undefined;
  private readonly incoming: string;
  private readonly temporary: string;

  constructor(readonly spool: string, readonly settings: SharedQueueSettings) {
    this.incoming = join(spool, 'incoming');
    this.temporary = join(spool, 'temporary');
  }

  get pool(): pg.Pool {
    if (!this.handle) throw new QueueError('io', 'postgres queue is not open');
    return this.handle;
  }

  async open(): Promise<void> {
    checkUrl(this.settings);
    await this.durable.mkdirs(this.spool, [this.incoming, this.temporary]);
    const pool = acquirePool(this.settings.url);
    try {
      await ensureSchema(pool);
    } catch (err) {
      await releasePool(this.settings.url);
      throw err;
    }
    this.handle = pool;
  }

  async close(): Promise<void> {
    if (!this.handle) return;
    this.handle = undefined;
    await releasePool(this.settings.url);
  }

  incomingPath(msgid: string): string {
    return join(this.incoming, msgid);
  }

  tempDir(): string {
    return this.temporary;
  }

  /** The group in one transaction: its COMMIT is what makes every message of it durable, at once. */
  async commit(batch: CommitItem[]): Promise<void> {
    const bodies = await Promise.all(batch.map(async (i) => {
      const body = await readFile(this.incomingPath(i.msgid)).catch((err) => {
        throw QueueError.from(err, 'queue commit');
      });
      checkSize(i.msgid, body.length, i.size);
      return body;
    }));
    const envelopes = batch.flatMap((i) => i.envelopes);
    // two statements whatever the group's size: round trips, not rows, are what a commit waits on
    await transaction(this.pool, 'queue commit', async (c) => {
      await c.query('INSERT INTO tsmtpd_messages (msgid, size, body) SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[])',
        [batch.map((i) => i.msgid), batch.map((i) => i.size), bodies]);
      await c.query(INSERT_ENVELOPES, envelopeColumns(this.records).map((col) => envelopes.map(col)));
      const replaced = batch.flatMap((i) => i.replaces ?? []);
      if (replaced.length) await deleteIn(c, replaced);
      await c.query(`SELECT pg_notify('${WAKE_CHANNEL}', '')`);
    });
    for (const item of batch) await rm(this.incomingPath(item.msgid), { force: true }).catch(() => {});
  }

  async discard(msgid: string): Promise<void> {
    await rm(this.incomingPath(msgid), { force: true });
  }

  /** The body, copied out of the database to a file of this node that goes on release. */
  async openBody(msgid: string): Promise<BodyHandle> {
    const res = await query<{ body: Buffer }>(this.pool, 'open body', 'SELECT body FROM tsmtpd_messages WHERE msgid = $1', [msgid]);
    const row = res.rows[0];
    if (!row) throw new QueueError('notfound', `message ${msgid} not found`);
    const path = join(this.temporary, `${msgid}.${randomBytes(4).toString('hex')}.stored`);
    try {
      await writeFile(path, row.body, { mode: 0o600 });
    } catch (err) {
      await rm(path, { force: true });
      throw QueueError.from(err, 'open body');
    }
    return { path, size: row.body.length, release: () => rm(path, { force: true }) };
  }

  async loadEnvelope(evpid: string): Promise<Envelope | undefined> {
    const res = await query<{ record: string }>(this.pool, 'load envelope', 'SELECT record FROM tsmtpd_envelopes WHERE evpid = $1', [evpid]);
    const rec = res.rows[0]?.record;
    if (rec === undefined) return undefined;
    const d = this.records.decode(recordFromText(rec), evpid);
    return d.ok ? d.envelope : undefined;
  }

  /** The record and the counters the scheduler reads; when it is next due is the scheduler's to say. */
  async updateEnvelopes(envelopes: Envelope[]): Promise<void> {
    for (const e of envelopes) await this.updateOne(e);
  }

  private async updateOne(e: Envelope): Promise<void> {
    const res = await query(this.pool, 'update envelope',
      'UPDATE tsmtpd_envelopes SET record = $2, tries = $3, last_try = $4, last_warn = $5 WHERE evpid = $1',
      [e.id, recordAsText(this.records.encode(e)), e.tries, e.lastTry, e.lastWarn]);
    if (res.rowCount === 0) throw new QueueError('notfound', `envelope ${e.id} not found`);
  }

  /** The envelopes of one relay transaction go in one database transaction. */
  async deleteEnvelopes(evpids: string[]): Promise<void> {
    await transaction(this.pool, 'delete envelope', (c) => deleteIn(c, evpids));
  }

  async *walk(): AsyncIterable<WalkEntry> {
    // ids first, records by pages: the caller may quarantine while we iterate
    const ids = (await query<{ evpid: string }>(this.pool, 'walk', 'SELECT evpid FROM tsmtpd_envelopes ORDER BY evpid')).rows.map((r) => r.evpid);
    for (let i = 0; i < ids.length; i += 500) {
      const page = ids.slice(i, i + 500);
      const res = await query<{ evpid: string; record: string }>(this.pool, 'walk', 'SELECT evpid, record FROM tsmtpd_envelopes WHERE evpid = ANY($1) ORDER BY evpid', [page]);
      for (const { evpid, record } of res.rows) {
        const d = this.records.decode(recordFromText(record), evpid);
        yield d.ok ? { envelope: d.envelope } : { damaged: evpid, reason: d.reason };
      }
    }
  }

  async *messages(): AsyncIterable<string> {
    const res = await query<{ msgid: string }>(this.pool, 'messages', 'SELECT msgid FROM tsmtpd_messages ORDER BY msgid');
    for (const r of res.rows) yield r.msgid;
  }

  async hasMessage(msgid: string): Promise<boolean> {
    const res = await query(this.pool, 'has message', 'SELECT 1 FROM tsmtpd_messages WHERE msgid = $1', [msgid]);
    return (res.rowCount ?? 0) > 0;
  }

  purgeIncoming(): Promise<number> {
    return purgeScratch(this.incoming, this.temporary);
  }

  async quarantine(id: string, reason: string): Promise<void> {
    const msgid = isEvpid(id) ? msgidOf(id) : id;
    if (!isEvpid(id) && !isMsgid(id)) return;
    await transaction(this.pool, 'quarantine', async (c) => {
      await lockMessage(c, msgid);
      if (isEvpid(id)) {
        await c.query('INSERT INTO tsmtpd_corrupt (id, record, reason) SELECT $1, (SELECT record FROM tsmtpd_envelopes WHERE evpid = $1), $2', [id, reason]);
        await c.query('DELETE FROM tsmtpd_envelopes WHERE evpid = $1', [id]);
      } else {
        await c.query('INSERT INTO tsmtpd_corrupt (id, record, reason) VALUES ($1, NULL, $2)', [id, reason]);
        await c.query('DELETE FROM tsmtpd_envelopes WHERE msgid = $1', [id]);
      }
      await dropMessageIfEmpty(c, msgid);
    });
  }
}

/** One array per column, a row per envelope: the whole group in one INSERT. */
const envelopeColumns = (records: RecordCodec): ((e: Envelope) => unknown)[] => [
  (e) => e.id, (e) => e.msgid, (e) => recordAsText(records.encode(e)), (e) => e.kind, (e) => e.createdAt, (e) => e.createdAt + e.ttl,
  (e) => e.tries, (e) => e.lastTry, (e) => e.lastWarn, firstTry,
];

const INSERT_ENVELOPES = `INSERT INTO tsmtpd_envelopes
  (evpid, msgid, record, kind, created_at, expires_at, tries, last_try, last_warn, next_try)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::integer[], $8::bigint[], $9::bigint[], $10::bigint[])`;

/** Delete envelopes in the caller's transaction; each message goes with its last envelope. */
async function deleteIn(c: pg.PoolClient, evpids: string[]): Promise<void> {
  // messages locked in one order, so two transactions deleting from the same ones cannot deadlock
  for (const msgid of [...new Set(evpids.map(msgidOf))].sort()) {
    await lockMessage(c, msgid);
    await c.query('DELETE FROM tsmtpd_envelopes WHERE evpid = ANY($1)', [evpids.filter((id) => msgidOf(id) === msgid)]);
    await dropMessageIfEmpty(c, msgid);
  }
}

/** Taken before an envelope of the message goes: two nodes deleting its last two then see each other's delete. */
async function lockMessage(c: pg.PoolClient, msgid: string): Promise<void> {
  await c.query('SELECT 1 FROM tsmtpd_messages WHERE msgid = $1 FOR UPDATE', [msgid]);
}

/** The message (and its body) goes with its last envelope, in the caller's transaction (which locked it). */
async function dropMessageIfEmpty(c: pg.PoolClient, msgid: string): Promise<void> {
  await c.query('DELETE FROM tsmtpd_messages m WHERE msgid = $1 AND NOT EXISTS (SELECT 1 FROM tsmtpd_envelopes WHERE msgid = $1)', [msgid]);
}
