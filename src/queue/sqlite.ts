/**
 * The sqlite queue backend: one WAL database at SPOOL/queue.sqlite holding envelopes and bodies,
 * the bodies as 64 KiB chunk rows copied from the incoming file, so none is ever whole in memory.
 * A group commit is one transaction, and synchronous=FULL makes its COMMIT the fsync.
 */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { mkdir, open, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { checkSize, QueueError, type BodyHandle, type CommitItem, type QueueBackend, type WalkEntry } from './backend.js';
import type { FaultHook } from './durable.js';
import { decodeEnvelope, encodeEnvelope } from './envelope-codec.js';
import { isEvpid, isMsgid, msgidOf, type Envelope } from './envelope.js';
import { purgeScratch } from './scratch.js';

const CHUNK = 64 * 1024;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS messages (msgid TEXT PRIMARY KEY, chunks INTEGER NOT NULL, size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (msgid TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (msgid, seq));
CREATE TABLE IF NOT EXISTS envelopes (evpid TEXT PRIMARY KEY, msgid TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS envelopes_msgid ON envelopes (msgid);
CREATE TABLE IF NOT EXISTS corrupt (id TEXT NOT NULL, record TEXT, reason TEXT NOT NULL);
`;

export class SqliteQueueBackend implements QueueBackend {
  readonly name = 'sqlite';
  private handle: Database.Database | undefined;
  private readonly incoming: string;
  private readonly temporary: string;
  private readonly fault: FaultHook;

  constructor(readonly spool: string, opts: { fault?: FaultHook } = {}) {
    this.incoming = join(spool, 'incoming');
    this.temporary = join(spool, 'temporary');
    this.fault = opts.fault ?? (() => {});
  }

  /** The open database; tests reach in through it to damage records. */
  get db(): Database.Database {
    if (!this.handle) throw new QueueError('io', 'sqlite queue is not open');
    return this.handle;
  }

  async open(): Promise<void> {
    for (const d of [this.incoming, this.temporary]) await mkdir(d, { recursive: true, mode: 0o700 });
    const db = new Database(join(this.spool, 'queue.sqlite'));
    db.pragma('journal_mode = WAL');
    // FULL: with WAL, every COMMIT is fsynced before it returns, so an ack is durable
    db.pragma('synchronous = FULL');
    db.exec(SCHEMA);
    this.handle = db;
  }

  async close(): Promise<void> {
    this.handle?.close();
    this.handle = undefined;
  }

  incomingPath(msgid: string): string {
    return join(this.incoming, msgid);
  }

  tempDir(): string {
    return this.temporary;
  }

  /** Copy one body into chunk rows; synchronous reads, because a transaction cannot span awaits. */
  private storeBody(msgid: string, expected: number): void {
    const fd = openSync(this.incomingPath(msgid), 'r');
    const insert = this.db.prepare('INSERT INTO chunks (msgid, seq, data) VALUES (?, ?, ?)');
    const buf = Buffer.alloc(CHUNK);
    let seq = 0;
    let size = 0;
    try {
      for (;;) {
        const n = readSync(fd, buf, 0, CHUNK, null);
        if (n === 0) break;
        this.fault('chunk');
        insert.run(msgid, seq++, Buffer.from(buf.subarray(0, n)));
        size += n;
      }
    } finally {
      closeSync(fd);
    }
    checkSize(msgid, size, expected);
    this.db.prepare('INSERT INTO messages (msgid, chunks, size) VALUES (?, ?, ?)').run(msgid, seq, size);
  }

  private storeItem(item: CommitItem): void {
    this.storeBody(item.msgid, item.size);
    const insert = this.db.prepare('INSERT INTO envelopes (evpid, msgid, record) VALUES (?, ?, ?)');
    for (const e of item.envelopes) {
      this.fault('envelope');
      insert.run(e.id, item.msgid, encodeEnvelope(e));
    }
  }

  async commit(batch: CommitItem[]): Promise<void> {
    try {
      this.db.transaction(() => {
        for (const item of batch) this.storeItem(item);
        this.fault('commit');
      })();
    } catch (err) {
      throw QueueError.from(err, 'queue commit');
    }
    for (const item of batch) await unlink(this.incomingPath(item.msgid)).catch(() => {});
  }

  async discard(msgid: string): Promise<void> {
    await rm(this.incomingPath(msgid), { force: true });
  }

  async openBody(msgid: string): Promise<BodyHandle> {
    const row = this.db.prepare('SELECT chunks FROM messages WHERE msgid = ?').get(msgid) as { chunks: number } | undefined;
    if (!row) throw new QueueError('notfound', `message ${msgid} not found`);
    const path = join(this.temporary, `${msgid}.${randomBytes(4).toString('hex')}.body`);
    const get = this.db.prepare('SELECT data FROM chunks WHERE msgid = ? AND seq = ?').pluck();
    const fh = await open(path, 'wx', 0o600);
    try {
      // one chunk at a time, by key: no statement stays open across the awaits
      for (let seq = 0; seq < row.chunks; seq++) {
        const data = get.get(msgid, seq) as Buffer | undefined;
        if (!data) throw new QueueError('io', `message ${msgid} is missing chunk ${seq}`);
        await fh.write(data);
      }
    } catch (err) {
      await fh.close();
      await rm(path, { force: true });
      throw QueueError.from(err, 'open body');
    }
    await fh.close();
    return { path, release: () => rm(path, { force: true }) };
  }

  async loadEnvelope(evpid: string): Promise<Envelope | undefined> {
    const rec = this.db.prepare('SELECT record FROM envelopes WHERE evpid = ?').pluck().get(evpid) as string | undefined;
    if (rec === undefined) return undefined;
    const d = decodeEnvelope(rec, evpid);
    return d.ok ? d.envelope : undefined;
  }

  async updateEnvelope(e: Envelope): Promise<void> {
    let changes: number;
    try {
      changes = this.db.prepare('UPDATE envelopes SET record = ? WHERE evpid = ?').run(encodeEnvelope(e), e.id).changes;
    } catch (err) {
      throw QueueError.from(err, 'update envelope');
    }
    if (changes === 0) throw new QueueError('notfound', `envelope ${e.id} not found`);
  }

  private dropMessageIfEmpty(msgid: string): void {
    const left = this.db.prepare('SELECT COUNT(*) FROM envelopes WHERE msgid = ?').pluck().get(msgid) as number;
    if (left > 0) return;
    this.db.prepare('DELETE FROM chunks WHERE msgid = ?').run(msgid);
    this.db.prepare('DELETE FROM messages WHERE msgid = ?').run(msgid);
  }

  async deleteEnvelope(evpid: string): Promise<void> {
    try {
      this.db.transaction(() => {
        this.db.prepare('DELETE FROM envelopes WHERE evpid = ?').run(evpid);
        this.dropMessageIfEmpty(msgidOf(evpid));
      })();
    } catch (err) {
      throw QueueError.from(err, 'delete envelope');
    }
  }

  async *walk(): AsyncIterable<WalkEntry> {
    // ids first, records one by one: the caller may quarantine while we iterate
    const ids = this.db.prepare('SELECT evpid FROM envelopes ORDER BY evpid').pluck().all() as string[];
    const get = this.db.prepare('SELECT record FROM envelopes WHERE evpid = ?').pluck();
    for (const evpid of ids) {
      const rec = get.get(evpid) as string | undefined;
      if (rec === undefined) continue;
      const d = decodeEnvelope(rec, evpid);
      yield d.ok ? { envelope: d.envelope } : { damaged: evpid, reason: d.reason };
    }
  }

  async *messages(): AsyncIterable<string> {
    yield* this.db.prepare('SELECT msgid FROM messages ORDER BY msgid').pluck().all() as string[];
  }

  async hasMessage(msgid: string): Promise<boolean> {
    return this.db.prepare('SELECT 1 FROM messages WHERE msgid = ?').get(msgid) !== undefined;
  }

  purgeIncoming(): Promise<number> {
    return purgeScratch(this.incoming, this.temporary);
  }

  /** The bad record moves to the corrupt table, for the operator; a message left without envelopes goes. */
  async quarantine(id: string, reason: string): Promise<void> {
    this.db.transaction(() => {
      if (isEvpid(id)) {
        const rec = this.db.prepare('SELECT record FROM envelopes WHERE evpid = ?').pluck().get(id) as string | undefined;
        this.db.prepare('INSERT INTO corrupt (id, record, reason) VALUES (?, ?, ?)').run(id, rec ?? null, reason);
        this.db.prepare('DELETE FROM envelopes WHERE evpid = ?').run(id);
        this.dropMessageIfEmpty(msgidOf(id));
      } else if (isMsgid(id)) {
        this.db.prepare('INSERT INTO corrupt (id, record, reason) VALUES (?, NULL, ?)').run(id, reason);
        this.db.prepare('DELETE FROM envelopes WHERE msgid = ?').run(id);
        this.dropMessageIfEmpty(id);
      }
    })();
  }
}
