/**
 * The queue front the queue role calls: id generation, body compression/encryption, group
 * commit and the fsync-before-ack policy, over any QueueBackend. Backends only store.
 */
import { randomHex } from '../random-hex.js';
import { closeSync, openSync } from 'node:fs';
import { copyFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../clock.js';
import { log } from '../log.js';
import { profileQueue } from '../trace.js';
import { checkSize, QueueError, type BodyHandle, type CommitItem, type QueueBackend } from './backend.js';
import { decodeBody, encodeBody, isPlain, type BodyCodec } from './body-codec.js';
import { queueKey } from './crypto.js';
import { recordCodec } from './record-codec.js';
import { isEvpid, isMsgid, type Envelope } from './envelope.js';

export { QueueError } from './backend.js';
export type NewEnvelope = Omit<Envelope, 'id' | 'msgid'>;

export interface QueueOptions {
  spool: string;
  clock: Clock;
  compression: boolean;
  /** As smtpd.conf `queue encryption KEY` gives it, or as read at start: 32 octets used as they are. */
  encryptionKey?: string;
}

interface Pending {
  item: CommitItem;
  resolve(): void;
  reject(err: QueueError): void;
}

/** A cap on one group, so a burst cannot make one commit unboundedly long. */
const MAX_GROUP = 256;
const ROLE = 'queue';

function hex8(): string {
  return randomHex(4);
}

export class Queue {
  private codec: BodyCodec;
  private pending: Pending[] = [];
  private flushing: Promise<void> | undefined;
  /** Messages between commit() and its outcome: a second commit of one would race on its files. */
  private committing = new Set<string>();

  constructor(
    readonly backend: QueueBackend,
    private readonly opts: QueueOptions,
  ) {
    this.codec = { compress: opts.compression };
    // queue.c: crypto_setup() refuses any key but 32 octets, before anything is stored
    if (opts.encryptionKey !== undefined) this.codec.key = queueKey(opts.encryptionKey);
    // queue_backend.c: envelopes are compressed and encrypted as bodies are
    backend.records = recordCodec(this.codec);
  }

  /** Opens the backend and removes stale incoming files: uncommitted mail of a previous run was never acknowledged. */
  async open(): Promise<void> {
    try {
      await this.backend.open();
      const stale = await this.backend.purgeIncoming();
      log('info', null, ROLE, 'queue-load', { backend: this.backend.name, stale });
    } catch (err) {
      throw QueueError.from(err, 'queue open');
    }
  }

  async close(): Promise<void> {
    await this.flushing;
    await this.backend.close();
  }

  /**
   * A new unique msgid and the file to write the body to, open at its first octet: the writer
   * uses this descriptor (one open per message, on the loop). The file is new (exclusive create)
   * or one the backend recycled, whose octets past the body the commit cuts. The first byte
   * follows the minute, the rest is random: messages received together then share their fs
   * bucket directory (the sqlite queue's `queue/bodies/XX/`), so a group commit fsyncs one directory, not one per message.
   */
  async create(): Promise<{ msgid: string; path: string; fd: number }> {
    const minute = Math.floor(this.opts.clock.now() / 60_000) % 256;
    for (let attempt = 0; attempt < 64; attempt++) {
      const msgid = minute.toString(16).padStart(2, '0') + randomHex(3);
      if (msgid === '00000000' || (await this.backend.hasMessage(msgid))) continue;
      const path = this.backend.incomingPath(msgid);
      try {
        // O_EXCL, or link() for a recycled file: two sessions never get the same incoming file.
        // An encoded body is rewritten into a new file, so only a plain one is written over a kept file.
        const kept = isPlain(this.codec) ? (this.backend.recycle?.(msgid) ?? null) : null;
        return { msgid, path, fd: kept ?? openSync(path, 'wx', 0o600) };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw QueueError.from(err, 'queue create');
      }
    }
    throw new QueueError('io', 'no free message id');
  }

  /** Envelope ids are the msgid then 8 random hex digits, distinct within the message. */
  private assignIds(msgid: string, envelopes: NewEnvelope[]): Envelope[] {
    const used = new Set<string>();
    return envelopes.map((e) => {
      let id: string;
      do id = msgid + hex8();
      while (used.has(id) || id.endsWith('00000000'));
      used.add(id);
      return { ...e, id, msgid };
    });
  }

  /**
   * Compress/encrypt the incoming body in place (new file, then rename) before the backend sees
   * it, once it is checked to hold the `size` octets received; returns the size the backend must
   * store. A plain body is checked by the backend itself, on the descriptor it fsyncs.
   */
  private async encodeIncoming(msgid: string, size: number): Promise<number> {
    if (isPlain(this.codec)) return size;
    const path = this.backend.incomingPath(msgid);
    checkSize(msgid, (await stat(path)).size, size);
    const tmp = `${path}.enc`;
    await rm(tmp, { force: true });
    try {
      await encodeBody(path, tmp, this.codec);
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return (await stat(path)).size;
  }

  /**
   * Assign evpids, store durably (fsync before resolving), return the envelopes. `size` is what
   * the writer handed over: a body file of any other length is refused, as is any write, fsync or
   * size check failing on the way. `fd`: the body, still open from the writer (the caller closes
   * it). Concurrent calls share one backend.commit. Throws QueueError
   * 'full' or 'io'; a failed message is discarded whole.
   */
  async commit(msgid: string, envelopes: NewEnvelope[], size: number, replaces?: string[], fd?: number): Promise<Envelope[]> {
    if (!isMsgid(msgid)) throw new QueueError('notfound', `bad msgid ${JSON.stringify(msgid)}`);
    if (envelopes.length === 0) throw new QueueError('io', 'a message needs at least one envelope');
    if (this.committing.has(msgid)) throw new QueueError('io', `message ${msgid} is already being committed`);
    const full = this.assignIds(msgid, envelopes);
    this.committing.add(msgid);
    try {
      // an encoded body is a new file: the writer's descriptor is of the old one
      const open = fd !== undefined && isPlain(this.codec) ? { fd } : {};
      await this.enqueue({ msgid, envelopes: full, size: await this.encodeIncoming(msgid, size), ...(replaces ? { replaces } : {}), ...open });
    } catch (err) {
      const qe = QueueError.from(err, 'queue commit');
      await this.backend.discard(msgid).catch(() => {});
      log('warn', msgid, ROLE, 'commit', { result: qe.code, error: qe.message });
      throw qe;
    } finally {
      this.committing.delete(msgid);
    }
    log('info', msgid, ROLE, 'commit', { result: 'ok', envelopes: full.length });
    return full;
  }

  private enqueue(item: CommitItem): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  /** Group commit: whatever arrived while the previous group was being written goes in the next. */
  private async flush(): Promise<void> {
    // one turn of the event loop lets commits started together land in the same group
    await new Promise((r) => setImmediate(r));
    while (this.pending.length > 0) await this.commitGroup(this.pending.splice(0, MAX_GROUP));
    this.flushing = undefined;
  }

  private async commitGroup(group: Pending[]): Promise<void> {
    try {
      await profileQueue('queue_message_commit', () => this.backend.commit(group.map((p) => p.item)));
      for (const p of group) p.resolve();
      return;
    } catch (err) {
      if (group.length === 1) return group[0]!.reject(QueueError.from(err, 'queue commit'));
    }
    // the backend took back the whole group; alone, each message fails or succeeds on its own
    for (const p of group) {
      try {
        await this.backend.commit([p.item]);
        p.resolve();
      } catch (err) {
        p.reject(QueueError.from(err, 'queue commit'));
      }
    }
  }

  async rollback(msgid: string): Promise<void> {
    if (!isMsgid(msgid)) return;
    await this.backend.discard(msgid);
  }

  /** Store a message the daemon generates itself (bounces): content from a file path; `replaces`: see CommitItem. */
  async inject(contentPath: string, envelopes: NewEnvelope[], replaces?: string[]): Promise<Envelope[]> {
    const { msgid, path, fd } = await this.create();
    let size: number;
    try {
      closeSync(fd);
      await copyFile(contentPath, path);
      size = (await stat(contentPath)).size;
    } catch (err) {
      await this.backend.discard(msgid).catch(() => {});
      throw QueueError.from(err, 'queue inject');
    }
    return this.commit(msgid, envelopes, size, replaces);
  }

  /** A plain-text path to the body; decrypted/decompressed into a temp file when needed. */
  async body(msgid: string): Promise<BodyHandle> {
    if (!isMsgid(msgid)) throw new QueueError('notfound', `bad msgid ${JSON.stringify(msgid)}`);
    const stored = await profileQueue('queue_message_fd_r', () => this.backend.openBody(msgid));
    if (isPlain(this.codec)) return stored;
    const dst = join(this.backend.tempDir(), `${msgid}.${hex8()}.plain`);
    try {
      await decodeBody(stored.path, dst, this.codec, stored.size);
    } finally {
      await stored.release();
    }
    return { path: dst, size: (await stat(dst)).size, release: () => rm(dst, { force: true }) };
  }

  async load(evpid: string): Promise<Envelope | undefined> {
    return isEvpid(evpid) ? profileQueue('queue_envelope_load', () => this.backend.loadEnvelope(evpid)) : undefined;
  }

  /** Durable: after a crash the envelopes are as given here. */
  async update(envelopes: Envelope[]): Promise<void> {
    for (const e of envelopes) if (!isEvpid(e.id) || e.id.slice(0, 8) !== e.msgid) throw new QueueError('notfound', `bad envelope id ${e.id}`);
    await profileQueue('queue_envelope_update', () => this.backend.updateEnvelopes(envelopes));
  }

  /**
   * Not durable: a crash right after may bring an envelope back, to be delivered twice, never lost
   * (the fs queue does not fsync deletions). A message goes with its last envelope.
   */
  async remove(evpids: string[]): Promise<void> {
    const valid = evpids.filter(isEvpid);
    if (valid.length === 0) return;
    await profileQueue('queue_envelope_delete', () => this.backend.deleteEnvelopes(valid));
    for (const evpid of valid) log('debug', evpid, ROLE, 'remove', {});
  }

  /** Every committed envelope; damaged entries are set aside and logged, never returned. */
  async *walk(): AsyncIterable<Envelope> {
    for await (const entry of this.backend.walk()) {
      if ('envelope' in entry) {
        yield entry.envelope;
        continue;
      }
      log('warn', entry.damaged, ROLE, 'queue-damaged', { reason: entry.reason, backend: this.backend.name });
      await this.backend.quarantine(entry.damaged, entry.reason).catch(() => {});
    }
  }

  messages(): AsyncIterable<string> {
    return this.backend.messages();
  }
}
