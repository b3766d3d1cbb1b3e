/**
 * The default queue backend: plain files under the spool, made crash-safe by fsync and rename.
 * Layout: incoming/<msgid> (bodies under reception, and staging dirs), queue/<XX>/<msgid>/message
 * + <evpid> beside it, corrupt/ (damaged entries set aside), temporary/ (plain copies for delivery).
 */
import { link, mkdir, readFile, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { checkSize, QueueError, type BodyHandle, type CommitItem, type QueueBackend, type WalkEntry } from './backend.js';
import { Durable, type FaultHook } from './durable.js';
import { plainRecords, type RecordCodec } from './record-codec.js';
import { isEvpid, isMsgid, msgidOf, type Envelope } from './envelope.js';
import { purgeScratch } from './scratch.js';

const BUCKET = /^[0-9a-f]{2}$/;

function missing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

export class FsQueueBackend implements QueueBackend {
  readonly name = 'fs';
  records: RecordCodec = plainRecords;
  readonly durable: Durable;
  private readonly incoming: string;
  private readonly queue: string;
  private readonly corrupt: string;
  private readonly temporary: string;

  constructor(readonly spool: string, opts: { fault?: FaultHook } = {}) {
    this.durable = new Durable(opts.fault);
    this.incoming = join(spool, 'incoming');
    this.queue = join(spool, 'queue');
    this.corrupt = join(spool, 'corrupt');
    this.temporary = join(spool, 'temporary');
  }

  async open(): Promise<void> {
    for (const d of [this.incoming, this.queue, this.corrupt, this.temporary]) await mkdir(d, { recursive: true, mode: 0o700 });
  }

  async close(): Promise<void> {}

  incomingPath(msgid: string): string {
    return join(this.incoming, msgid);
  }

  tempDir(): string {
    return this.temporary;
  }

  private msgDir(msgid: string): string {
    return join(this.queue, msgid.slice(0, 2), msgid);
  }

  private evpPath(evpid: string): string {
    return join(this.msgDir(msgidOf(evpid)), evpid);
  }

  /** Build the complete message directory in incoming/, invisible to walk() until renamed. */
  private async stage(item: CommitItem): Promise<string> {
    const dir = join(this.incoming, `${item.msgid}.d`);
    await rm(dir, { recursive: true, force: true });
    this.durable.step('mkdir');
    // envelopes sit beside the body in the message directory: one directory fsync covers all
    await mkdir(dir, { recursive: true, mode: 0o700 });
    checkSize(item.msgid, await this.durable.fsyncFile(this.incomingPath(item.msgid)), item.size);
    // a hard link, not a rename: if the batch fails the body is still in incoming/ for a retry
    this.durable.step('link');
    await link(this.incomingPath(item.msgid), join(dir, 'message'));
    // in parallel: the filesystem's journal folds concurrent fsyncs into one commit
    await Promise.all(item.envelopes.map((e) => this.durable.writeFile(join(dir, e.id), this.records.encode(e))));
    await this.durable.fsyncDir(dir);
    return dir;
  }

  async commit(batch: CommitItem[]): Promise<void> {
    const moved: string[] = [];
    try {
      const staged = await Promise.allSettled(batch.map((item) => this.stage(item)));
      const failed = staged.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      const buckets = new Set(batch.map((i) => join(this.queue, i.msgid.slice(0, 2))));
      await this.durable.mkdirs(this.queue, buckets);
      for (const item of batch) {
        this.durable.step('rename');
        await rename(join(this.incoming, `${item.msgid}.d`), this.msgDir(item.msgid));
        moved.push(this.msgDir(item.msgid));
      }
      // one fsync per bucket for the whole batch: this is what group commit saves
      for (const b of buckets) await this.durable.fsyncDir(b);
    } catch (err) {
      await this.undo(batch, moved);
      throw QueueError.from(err, 'queue commit');
    }
    for (const item of batch) await unlink(this.incomingPath(item.msgid)).catch(() => {});
  }

  /** Take back everything a failed batch wrote; the incoming bodies stay. */
  private async undo(batch: CommitItem[], moved: string[]): Promise<void> {
    for (const d of moved) await rm(d, { recursive: true, force: true }).catch(() => {});
    for (const item of batch) await rm(join(this.incoming, `${item.msgid}.d`), { recursive: true, force: true }).catch(() => {});
  }

  async discard(msgid: string): Promise<void> {
    await rm(this.incomingPath(msgid), { force: true });
    await rm(join(this.incoming, `${msgid}.d`), { recursive: true, force: true });
  }

  async openBody(msgid: string): Promise<BodyHandle> {
    const path = join(this.msgDir(msgid), 'message');
    try {
      await stat(path);
    } catch (err) {
      throw missing(err) ? new QueueError('notfound', `message ${msgid} not found`) : QueueError.from(err, 'open body');
    }
    return { path, release: async () => {} };
  }

  async loadEnvelope(evpid: string): Promise<Envelope | undefined> {
    if (!isEvpid(evpid)) return undefined;
    let record: Buffer;
    try {
      record = await readFile(this.evpPath(evpid));
    } catch (err) {
      if (missing(err)) return undefined;
      throw QueueError.from(err, 'load envelope');
    }
    const d = this.records.decode(record, evpid);
    return d.ok ? d.envelope : undefined;
  }

  async updateEnvelope(e: Envelope): Promise<void> {
    const dir = this.msgDir(e.msgid);
    try {
      await stat(join(dir, e.id));
    } catch (err) {
      throw missing(err) ? new QueueError('notfound', `envelope ${e.id} not found`) : QueueError.from(err, 'update');
    }
    const tmp = join(dir, `.${e.id}.${randomBytes(4).toString('hex')}`);
    try {
      await this.durable.replaceFile(join(dir, e.id), tmp, dir, this.records.encode(e));
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => {});
      throw QueueError.from(err, 'update envelope');
    }
  }

  async deleteEnvelope(evpid: string): Promise<void> {
    if (!isEvpid(evpid)) return;
    const msgid = msgidOf(evpid);
    const dir = this.msgDir(msgid);
    try {
      await unlink(join(dir, evpid));
      if ((await this.envelopeNames(msgid)).length === 0) await this.removeMessage(msgid);
      else await this.durable.fsyncDir(dir);
    } catch (err) {
      if (!missing(err)) throw QueueError.from(err, 'delete envelope');
    }
  }

  /** Rename first so a crash never leaves half a message dir in the queue, then delete at leisure. */
  private async removeMessage(msgid: string): Promise<void> {
    const gone = join(this.incoming, `${msgid}.gone.${randomBytes(4).toString('hex')}`);
    try {
      await rename(this.msgDir(msgid), gone);
    } catch (err) {
      if (missing(err)) return;
      throw err;
    }
    await this.durable.fsyncDir(join(this.queue, msgid.slice(0, 2)));
    await rm(gone, { recursive: true, force: true });
  }

  private async envelopeNames(msgid: string): Promise<string[]> {
    const names = await readdir(this.msgDir(msgid)).catch((err) => {
      if (missing(err)) return [] as string[];
      throw err;
    });
    return names.filter((n) => isEvpid(n) && msgidOf(n) === msgid).sort();
  }

  private async *walkMessage(msgid: string): AsyncGenerator<WalkEntry> {
    const names = await this.envelopeNames(msgid);
    if (names.length === 0) {
      // crashed between deleting the last envelope and removing the message
      await this.removeMessage(msgid);
      return;
    }
    if (!(await stat(join(this.msgDir(msgid), 'message')).then(() => true, () => false))) {
      yield { damaged: msgid, reason: 'message body missing' };
      return;
    }
    for (const evpid of names) {
      const record = await readFile(join(this.msgDir(msgid), evpid)).catch(() => undefined);
      const d = record === undefined ? { ok: false as const, reason: 'unreadable' } : this.records.decode(record, evpid);
      yield d.ok ? { envelope: d.envelope } : { damaged: evpid, reason: d.reason };
    }
  }

  async *walk(): AsyncIterable<WalkEntry> {
    for await (const msgid of this.messages()) yield* this.walkMessage(msgid);
  }

  async *messages(): AsyncIterable<string> {
    const buckets = (await readdir(this.queue)).filter((b) => BUCKET.test(b)).sort();
    for (const b of buckets) {
      const names = await readdir(join(this.queue, b)).catch(() => [] as string[]);
      for (const m of names.sort()) if (isMsgid(m) && m.startsWith(b)) yield m;
    }
  }

  async hasMessage(msgid: string): Promise<boolean> {
    return stat(this.msgDir(msgid)).then(() => true, () => false);
  }

  purgeIncoming(): Promise<number> {
    return purgeScratch(this.incoming, this.temporary);
  }

  async quarantine(id: string, reason: string): Promise<void> {
    void reason;
    const stamp = randomBytes(4).toString('hex');
    if (isMsgid(id)) {
      await rename(this.msgDir(id), join(this.corrupt, `${id}.${stamp}`)).catch(() => {});
      return;
    }
    if (!isEvpid(id)) return;
    await rename(this.evpPath(id), join(this.corrupt, `${id}.${stamp}`)).catch(() => {});
    const msgid = msgidOf(id);
    // keep the body with the bad record for the operator when no good envelope needs it
    if ((await this.envelopeNames(msgid)).length === 0) {
      await rename(this.msgDir(msgid), join(this.corrupt, `${msgid}.${stamp}`)).catch(() => {});
    }
  }
}
