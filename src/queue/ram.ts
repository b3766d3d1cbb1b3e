/** A queue backend in memory for tests: records in maps, bodies in files under the spool. */
import { link, mkdir, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { checkSize, QueueError, type BodyHandle, type CommitItem, type QueueBackend, type WalkEntry } from './backend.js';
import { plainRecords, type RecordCodec } from './record-codec.js';
import { isEvpid, isMsgid, msgidOf, type Envelope } from './envelope.js';
import { purgeScratch } from './scratch.js';

export class RamQueueBackend implements QueueBackend {
  readonly name = 'ram';
  records: RecordCodec = plainRecords;
  /** msgid → its envelope ids. */
  private readonly msgs = new Map<string, Set<string>>();
  /** evpid → encoded record: stored encoded, so the codec is exercised as on disk. */
  private readonly stored = new Map<string, string | Buffer>();
  private readonly incoming: string;
  private readonly bodies: string;
  private readonly temporary: string;

  constructor(readonly spool: string) {
    this.incoming = join(spool, 'incoming');
    this.bodies = join(spool, 'queue', 'ram-bodies');
    this.temporary = join(spool, 'temporary');
  }

  async open(): Promise<void> {
    for (const d of [this.incoming, this.bodies, this.temporary]) await mkdir(d, { recursive: true, mode: 0o700 });
  }

  async close(): Promise<void> {}

  incomingPath(msgid: string): string {
    return join(this.incoming, msgid);
  }

  tempDir(): string {
    return this.temporary;
  }

  bodyPath(msgid: string): string {
    return join(this.bodies, msgid);
  }

  /** The stored record as kept (tests check it is sealed). */
  peek(evpid: string): string | Buffer | undefined {
    return this.stored.get(evpid);
  }

  /** Replace a stored record as is (tests use it to damage one). */
  poke(evpid: string, text: string): void {
    this.stored.set(evpid, text);
  }

  async commit(batch: CommitItem[]): Promise<void> {
    const linked: string[] = [];
    try {
      for (const item of batch) {
        checkSize(item.msgid, (await stat(this.incomingPath(item.msgid))).size, item.size);
        await link(this.incomingPath(item.msgid), this.bodyPath(item.msgid));
        linked.push(item.msgid);
      }
    } catch (err) {
      for (const m of linked) await rm(this.bodyPath(m), { force: true });
      throw QueueError.from(err, 'queue commit');
    }
    for (const item of batch) {
      this.msgs.set(item.msgid, new Set(item.envelopes.map((e) => e.id)));
      for (const e of item.envelopes) this.stored.set(e.id, this.records.encode(e));
      await unlink(this.incomingPath(item.msgid)).catch(() => {});
    }
  }

  async discard(msgid: string): Promise<void> {
    await rm(this.incomingPath(msgid), { force: true });
  }

  async openBody(msgid: string): Promise<BodyHandle> {
    if (!this.msgs.has(msgid)) throw new QueueError('notfound', `message ${msgid} not found`);
    const { size } = await stat(this.bodyPath(msgid)).catch((err) => {
      throw QueueError.from(err, 'open body');
    });
    return { path: this.bodyPath(msgid), size, release: async () => {} };
  }

  async loadEnvelope(evpid: string): Promise<Envelope | undefined> {
    const rec = this.stored.get(evpid);
    if (rec === undefined) return undefined;
    const d = this.records.decode(rec, evpid);
    return d.ok ? d.envelope : undefined;
  }

  async updateEnvelopes(envelopes: Envelope[]): Promise<void> {
    const unknown = envelopes.find((e) => !this.stored.has(e.id));
    if (unknown) throw new QueueError('notfound', `envelope ${unknown.id} not found`);
    for (const e of envelopes) this.stored.set(e.id, this.records.encode(e));
  }

  async deleteEnvelopes(evpids: string[]): Promise<void> {
    for (const evpid of evpids) await this.deleteOne(evpid);
  }

  private async deleteOne(evpid: string): Promise<void> {
    this.stored.delete(evpid);
    const msgid = msgidOf(evpid);
    const set = this.msgs.get(msgid);
    if (!set) return;
    set.delete(evpid);
    if (set.size > 0) return;
    this.msgs.delete(msgid);
    await rm(this.bodyPath(msgid), { force: true });
  }

  async *walk(): AsyncIterable<WalkEntry> {
    for (const [, ids] of [...this.msgs].sort(([a], [b]) => a.localeCompare(b))) {
      for (const evpid of [...ids].sort()) {
        const rec = this.stored.get(evpid);
        if (rec === undefined) continue;
        const d = this.records.decode(rec, evpid);
        yield d.ok ? { envelope: d.envelope } : { damaged: evpid, reason: d.reason };
      }
    }
  }

  async *messages(): AsyncIterable<string> {
    yield* [...this.msgs.keys()].sort();
  }

  async hasMessage(msgid: string): Promise<boolean> {
    return this.msgs.has(msgid);
  }

  purgeIncoming(): Promise<number> {
    return purgeScratch(this.incoming, this.temporary);
  }

  async quarantine(id: string): Promise<void> {
    if (isEvpid(id)) await this.deleteOne(id);
    else if (isMsgid(id)) await this.deleteEnvelopes([...(this.msgs.get(id) ?? [])]);
  }
}
