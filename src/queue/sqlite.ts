/**
 * The sqlite queue backend: envelopes and the message index in one WAL database at
 * SPOOL/queue/queue.sqlite, bodies as files beside it (SPOOL/queue/bodies/XX/<msgid>), linked from
 * incoming/: all inside queue/, which only the queue user may enter.
 * A group commit fsyncs the bodies and their bucket directories, then commits one transaction
 * (synchronous=FULL makes the COMMIT its fsync). Bodies stay out of the database because a
 * database gives freed pages back to the filesystem only when vacuumed: on a full spool,
 * deleting delivered mail must free space at once, and delivery reads the stored file in place.
 */
import Database from 'better-sqlite3';
import { link, readdir, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { checkSize, QueueError, type BodyHandle, type CommitItem, type QueueBackend, type WalkEntry } from './backend.js';
import { Durable, type FaultHook } from './durable.js';
import { plainRecords, type RecordCodec } from './record-codec.js';
import { isEvpid, isMsgid, msgidOf, type Envelope } from './envelope.js';
import { purgeScratch } from './scratch.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS messages (msgid TEXT PRIMARY KEY, size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS envelopes (evpid TEXT PRIMARY KEY, msgid TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS envelopes_msgid ON envelopes (msgid);
CREATE TABLE IF NOT EXISTS corrupt (id TEXT NOT NULL, record TEXT, reason TEXT NOT NULL);
`;

export const SQLITE_FILE = 'queue/queue.sqlite';

export class SqliteQueueBackend implements QueueBackend {
  readonly name = 'sqlite';
  records: RecordCodec = plainRecords;
  readonly durable: Durable;
  private handle: Database.Database | undefined;
  private readonly incoming: string;
  private readonly temporary: string;
  private readonly bodies: string;
  private readonly fault: FaultHook;

  constructor(readonly spool: string, opts: { fault?: FaultHook } = {}) {
    this.incoming = join(spool, 'incoming');
    this.temporary = join(spool, 'temporary');
    this.bodies = join(spool, 'queue', 'bodies');
    this.fault = opts.fault ?? (() => {});
    this.durable = new Durable(this.fault);
  }

  private readonly statements = new Map<string, Database.Statement>();

  /** A statement prepared once per open database, not on every call. */
  private stmt(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  /** The open database; tests reach in through it to damage records. */
  get db(): Database.Database {
    if (!this.handle) throw new QueueError('io', 'sqlite queue is not open');
    return this.handle;
  }

  async open(): Promise<void> {
    // the spool's top is the parent's (the queue user may not even read it): each level is synced by its own parent
    await this.durable.mkdirs(this.spool, [this.incoming, this.temporary, join(this.spool, 'queue')]);
    await this.durable.mkdirs(join(this.spool, 'queue'), [this.bodies]);
    // in queue/, which only the queue user may enter
    const db = new Database(join(this.spool, SQLITE_FILE));
    try {
      checkLayout(db);
      db.pragma('journal_mode = WAL');
      // FULL: with WAL, every COMMIT is fsynced before it returns, so an ack is durable
      db.pragma('synchronous = FULL');
      db.exec(SCHEMA);
    } catch (err) {
      db.close();
      throw err;
    }
    this.handle = db;
    await this.purgeOrphans();
  }

  async close(): Promise<void> {
    this.statements.clear();
    this.handle?.close();
    this.handle = undefined;
  }

  incomingPath(msgid: string): string {
    return join(this.incoming, msgid);
  }

  tempDir(): string {
    return this.temporary;
  }

  /** Where a committed body is; the bucket is the msgid's first byte, so a group commit shares its directory fsync. */
  bodyPath(msgid: string): string {
    return join(this.bucket(msgid), msgid);
  }

  private bucket(msgid: string): string {
    return join(this.bodies, msgid.slice(0, 2));
  }

  /** The bodies first, durable in their buckets; then one transaction makes the batch part of the queue. */
  async commit(batch: CommitItem[]): Promise<void> {
    const linked: string[] = [];
    try {
      await Promise.all(batch.map(async (i) => checkSize(i.msgid, await this.durable.fsyncFile(this.incomingPath(i.msgid)), i.size)));
      const buckets = [...new Set(batch.map((i) => this.bucket(i.msgid)))];
      await this.durable.mkdirs(this.bodies, buckets);
      for (const item of batch) {
        // a leftover of a failed commit under this unused msgid would refuse the link
        await rm(this.bodyPath(item.msgid), { force: true });
        this.durable.step('link');
        await link(this.incomingPath(item.msgid), this.bodyPath(item.msgid));
        linked.push(this.bodyPath(item.msgid));
      }
      for (const b of buckets) await this.durable.fsyncDir(b);
      this.db.transaction(() => {
        for (const item of batch) this.storeItem(item);
        this.fault('commit');
      })();
    } catch (err) {
      for (const path of linked) await rm(path, { force: true }).catch(() => {});
      throw QueueError.from(err, 'queue commit');
    }
    for (const item of batch) await unlink(this.incomingPath(item.msgid)).catch(() => {});
  }

  private storeItem(item: CommitItem): void {
    this.stmt('INSERT INTO messages (msgid, size) VALUES (?, ?)').run(item.msgid, item.size);
    const insert = this.stmt('INSERT INTO envelopes (evpid, msgid, record) VALUES (?, ?, ?)');
    for (const e of item.envelopes) {
      this.fault('envelope');
      insert.run(e.id, item.msgid, this.records.encode(e));
    }
  }

  async discard(msgid: string): Promise<void> {
    await rm(this.incomingPath(msgid), { force: true });
  }

  async openBody(msgid: string): Promise<BodyHandle> {
    if (!(await this.hasMessage(msgid))) throw new QueueError('notfound', `message ${msgid} not found`);
    const path = this.bodyPath(msgid);
    const { size } = await stat(path).catch((err) => {
      throw QueueError.from(err, 'open body');
    });
    return { path, size, release: async () => {} };
  }

  async loadEnvelope(evpid: string): Promise<Envelope | undefined> {
    const rec = this.stmt('SELECT record FROM envelopes WHERE evpid = ?').pluck().get(evpid) as string | Buffer | undefined;
    if (rec === undefined) return undefined;
    const d = this.records.decode(rec, evpid);
    return d.ok ? d.envelope : undefined;
  }

  /** One transaction (one fsync) for the whole set; an unknown envelope rolls it back. */
  async updateEnvelopes(envelopes: Envelope[]): Promise<void> {
    let missing: string | undefined;
    try {
      this.db.transaction(() => {
        const update = this.stmt('UPDATE envelopes SET record = ? WHERE evpid = ?');
        for (const e of envelopes) {
          if (update.run(this.records.encode(e), e.id).changes === 0) {
            missing = e.id;
            throw new QueueError('notfound', `envelope ${e.id} not found`);
          }
        }
      })();
    } catch (err) {
      if (missing) throw err;
      throw QueueError.from(err, 'update envelope');
    }
  }

  /** Inside a transaction: the message row goes with its last envelope; true when it went. */
  private dropMessageIfEmpty(msgid: string): boolean {
    const left = this.stmt('SELECT COUNT(*) FROM envelopes WHERE msgid = ?').pluck().get(msgid) as number;
    if (left > 0) return false;
    return this.stmt('DELETE FROM messages WHERE msgid = ?').run(msgid).changes > 0;
  }

  /** After the transaction that dropped the message: a crash before this leaves an orphan, purged at open. */
  private async dropBody(msgid: string): Promise<void> {
    await rm(this.bodyPath(msgid), { force: true });
  }

  /** The envelopes of one relay transaction go in one database transaction. */
  async deleteEnvelopes(evpids: string[]): Promise<void> {
    let dropped: string[];
    try {
      dropped = this.db.transaction(() => {
        const del = this.stmt('DELETE FROM envelopes WHERE evpid = ?');
        for (const evpid of evpids) del.run(evpid);
        return [...new Set(evpids.map(msgidOf))].filter((msgid) => this.dropMessageIfEmpty(msgid));
      })();
    } catch (err) {
      throw QueueError.from(err, 'delete envelope');
    }
    for (const msgid of dropped) await this.dropBody(msgid);
  }

  async *walk(): AsyncIterable<WalkEntry> {
    // ids first, records one by one: the caller may quarantine while we iterate
    const ids = this.db.prepare('SELECT evpid FROM envelopes ORDER BY evpid').pluck().all() as string[];
    const get = this.db.prepare('SELECT record FROM envelopes WHERE evpid = ?').pluck();
    let checked = '';
    for (const evpid of ids) {
      const msgid = msgidOf(evpid);
      if (msgid !== checked) {
        checked = msgid;
        if (!(await stat(this.bodyPath(msgid)).then(() => true, () => false))) {
          yield { damaged: msgid, reason: 'message body missing' };
          continue;
        }
      }
      const rec = get.get(evpid) as string | Buffer | undefined;
      if (rec === undefined) continue;
      const d = this.records.decode(rec, evpid);
      yield d.ok ? { envelope: d.envelope } : { damaged: evpid, reason: d.reason };
    }
  }

  async *messages(): AsyncIterable<string> {
    yield* this.db.prepare('SELECT msgid FROM messages ORDER BY msgid').pluck().all() as string[];
  }

  async hasMessage(msgid: string): Promise<boolean> {
    return this.stmt('SELECT 1 FROM messages WHERE msgid = ?').get(msgid) !== undefined;
  }

  purgeIncoming(): Promise<number> {
    return purgeScratch(this.incoming, this.temporary);
  }

  /** The bad record moves to the corrupt table, for the operator; a message left without envelopes goes. */
  async quarantine(id: string, reason: string): Promise<void> {
    const msgid = isEvpid(id) ? msgidOf(id) : id;
    const dropped = this.db.transaction(() => {
      if (isEvpid(id)) {
        const rec = this.db.prepare('SELECT record FROM envelopes WHERE evpid = ?').pluck().get(id) as string | Buffer | undefined;
        this.db.prepare('INSERT INTO corrupt (id, record, reason) VALUES (?, ?, ?)').run(id, rec ?? null, reason);
        this.db.prepare('DELETE FROM envelopes WHERE evpid = ?').run(id);
      } else if (isMsgid(id)) {
        this.db.prepare('INSERT INTO corrupt (id, record, reason) VALUES (?, NULL, ?)').run(id, reason);
        this.db.prepare('DELETE FROM envelopes WHERE msgid = ?').run(id);
      } else return false;
      return this.dropMessageIfEmpty(msgid);
    })();
    if (dropped) await this.dropBody(msgid);
  }

  /** Bodies without a message row: a crash came between linking them and the commit, or after a delete. */
  private async purgeOrphans(): Promise<void> {
    for (const b of await readdir(this.bodies)) {
      for (const name of await readdir(join(this.bodies, b)).catch(() => [] as string[])) {
        if (isMsgid(name) && !(await this.hasMessage(name))) await rm(join(this.bodies, b, name), { force: true });
      }
    }
  }
}

/** Earlier versions kept bodies in a `chunks` table, which this one does not read: refuse rather than lose them. */
function checkLayout(db: Database.Database): void {
  if (db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'chunks'").get()) {
    throw new QueueError('io', `${db.name} keeps message bodies inside the database, as earlier tsmtpd versions did: deliver that queue with the version that wrote it, or move it aside`);
  }
}
