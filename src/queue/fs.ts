/**
 * The default queue backend: one file per message, made durable by one fsync and a rename.
 *
 *   incoming/<msgid>       a body under reception
 *   queue/<msgid>          a committed message: the body, then its envelopes, then a trailer
 *   queue/<msgid>.env      the message's envelopes as they are now, once one changed
 *   spare/<name>           delivered messages' files, overwritten by the next ones (fs-spares.ts)
 *   corrupt/               damaged entries set aside for the operator
 *   temporary/             plain copies of bodies for delivery
 *
 * A commit appends the envelopes to the incoming file through the descriptor it was written with,
 * renames it into queue/, and then fsyncs it (a lone message on the loop, as queue_fs.c's
 * fsqueue_envelope_dump_atomic() does in the queue process: the thread pool's trip costs two
 * wake-ups, more than the wait; a group in the pool, where the fsyncs overlap): one fsync per
 * message, which makes the content and the name durable together on Linux's filesystems (ext4
 * commits the journal transaction holding the inode's last change, the rename included, and without
 * a journal syncs the parent of a new entry, ext4_sync_parent(); XFS forces its log to the inode's
 * last change; btrfs logs the new name). queue/ itself is not fsynced, as neither Postfix nor
 * OpenSMTPD's queue_fs.c fsync their queue directories. Envelopes stay in memory from commit to
 * delivery; the disk is read back only at start. An update (a retry) rewrites the sidecar durably;
 * a deletion does not fsync: after a crash a delivered envelope may come back and be delivered
 * again, but nothing acknowledged is ever lost. A delivered message's file is kept in spare/ and
 * written over by a later message instead of being unlinked (fs-spares.ts).
 */
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { checkSize, QueueError, type BodyHandle, type CommitItem, type QueueBackend, type WalkEntry } from './backend.js';
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, renameSync, unlinkSync } from 'node:fs';
import { closeQuietly, Durable, syncFd, syncFdNow, syncHandle, writeAll, writeAllSync, type FaultHook } from './durable.js';
import { plainRecords, recordFromText, type RecordCodec } from './record-codec.js';
import { isEvpid, isMsgid, msgidOf, type Envelope } from './envelope.js';
import { purgeScratch } from './scratch.js';
import { migrateBucketLayout } from './fs-migrate.js';
import { decodeRecords, encodeRecords, parseTrailer, trailer, TRAILER_LEN } from './fs-format.js';
import { SparePool } from './fs-spares.js';

const SIDECAR = '.env';

function missing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

/** Run a removal; a file already gone is no error. */
function ifPresent(remove: () => unknown): void {
  try {
    remove();
  } catch (err) {
    if (!missing(err)) throw err;
  }
}

interface Damaged {
  /** The record as stored, kept for the operator at quarantine. */
  text: string;
  reason: string;
}

interface Stored {
  /** -1 when the message file itself is unreadable (its reason is under its msgid in `damaged`). */
  bodySize: number;
  envelopes: Map<string, Envelope>;
  /** Records that did not decode. */
  damaged?: Map<string, Damaged>;
  /** A sidecar was written or found: removing the message removes it too. */
  sidecar?: boolean;
}

export class FsQueueBackend implements QueueBackend {
  readonly name = 'fs';
  private codec: RecordCodec = plainRecords;
  readonly durable: Durable;
  private readonly incoming: string;
  private readonly queue: string;
  private readonly corrupt: string;
  private readonly temporary: string;
  /** Every committed message known to this process, with its envelopes. */
  private readonly stored = new Map<string, Stored>();
  /** After the first full walk, `stored` knows every message: no existence checks on disk. */
  private complete = false;
  /** Sidecar writes of one message run one after the other. */
  private readonly chains = new Map<string, Promise<void>>();
  /** Messages in queue/ whose commit is not over (not fsynced yet): not read from disk meanwhile. */
  private readonly sealing = new Set<string>();
  private readonly spares: SparePool;
  /** Incoming files made of spares: past what the writer wrote they hold an old message's octets. */
  private readonly recycled = new Set<string>();

  get records(): RecordCodec {
    return this.codec;
  }

  /** Another record codec (another key) means what is known was read with the old one: read the disk again. */
  set records(codec: RecordCodec) {
    this.codec = codec;
    this.stored.clear();
    this.complete = false;
  }

  constructor(readonly spool: string, opts: { fault?: FaultHook } = {}) {
    this.durable = new Durable(opts.fault);
    this.incoming = join(spool, 'incoming');
    this.queue = join(spool, 'queue');
    this.corrupt = join(spool, 'corrupt');
    this.temporary = join(spool, 'temporary');
    this.spares = new SparePool(join(spool, 'spare'));
  }

  async open(): Promise<void> {
    for (const d of [this.incoming, this.queue, this.corrupt, this.temporary, this.spares.dir]) await mkdir(d, { recursive: true, mode: 0o700 });
    this.spares.load();
    await migrateBucketLayout(this.queue, this.incoming, this.durable, this.records);
  }

  async close(): Promise<void> {
    await Promise.all(this.chains.values());
  }

  incomingPath(msgid: string): string {
    return join(this.incoming, msgid);
  }

  /** The incoming file of `msgid` made of a delivered message's file, open at its first octet; null when no spare is left. */
  recycle(msgid: string): number | null {
    const fd = this.spares.take(this.incomingPath(msgid));
    if (fd !== null) this.recycled.add(msgid);
    return fd;
  }

  tempDir(): string {
    return this.temporary;
  }

  /** Drop what is known of a message, so it is read from disk again (a file changed by hand, then `discover`). */
  forget(msgid: string): void {
    this.stored.delete(msgid);
    this.complete = false;
  }

  /** Where a committed message is (tests reach in through it). */
  messagePath(msgid: string): string {
    return join(this.queue, msgid);
  }

  sidecarPath(msgid: string): string {
    return join(this.queue, msgid + SIDECAR);
  }

  /**
   * Append the envelopes and trailer to each incoming body, fsync each once, rename them into
   * queue/ and fsync queue/ once. On failure every body is back in incoming/ as it was received.
   */
  async commit(batch: CommitItem[]): Promise<void> {
    const moved: CommitItem[] = [];
    const opened: number[] = [];
    for (const item of batch) this.sealing.add(item.msgid);
    try {
      const fds = batch.map((item) => {
        if (item.fd !== undefined) return item.fd;
        const fd = openSync(this.incomingPath(item.msgid), 'r+');
        opened.push(fd);
        return fd;
      });
      batch.forEach((item, i) => this.seal(item, fds[i]!));
      for (const item of batch) {
        this.durable.step('rename');
        renameSync(this.incomingPath(item.msgid), this.messagePath(item.msgid));
        moved.push(item);
      }
      // after the rename, so that each fsync makes its file's name durable with its content
      // a group's fsyncs overlap in the thread pool; a lone one is done on the loop
      if (fds.length === 1) syncFdNow(this.durable, fds[0]!);
      else {
        const synced = await Promise.allSettled(fds.map((fd) => syncFd(this.durable, fd)));
        const failed = synced.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
      }
    } catch (err) {
      await this.undo(batch, moved);
      throw QueueError.from(err, 'queue commit');
    } finally {
      for (const fd of opened) closeQuietly(fd);
      for (const item of batch) this.sealing.delete(item.msgid);
    }
    for (const item of batch) {
      this.recycled.delete(item.msgid);
      // before the first walk has swept orphan sidecars, one may wait under this msgid: remove it with the message
      this.stored.set(item.msgid, { bodySize: item.size, envelopes: new Map(item.envelopes.map((e) => [e.id, e])), sidecar: !this.complete });
    }
  }

  /**
   * Check the body's size and write the envelope block and trailer after it (plain syscalls on
   * the loop, as queue_fs.c makes them). A recycled file is cut after the trailer: what follows
   * is the old message's.
   */
  private seal(item: CommitItem, fd: number): void {
    const { size } = fstatSync(fd);
    const recycled = this.recycled.has(item.msgid);
    // a retry after a failed group finds its earlier trailer: cut back to the body first
    if (recycled ? size < item.size : !cutTrailer(fd, size, item.size)) checkSize(item.msgid, size, item.size);
    const block = encodeRecords(item.envelopes, this.records);
    this.durable.step('write');
    writeAllSync(fd, Buffer.concat([block, trailer(item.size, block.length)]), item.size);
    const end = item.size + block.length + TRAILER_LEN;
    if (recycled && size > end) ftruncateSync(fd, end);
  }

  /** Take back a failed batch: renamed messages return to incoming/, every body loses its trailer. */
  private async undo(batch: CommitItem[], moved: CommitItem[]): Promise<void> {
    for (const item of moved) await rename(this.messagePath(item.msgid), this.incomingPath(item.msgid)).catch(() => {});
    for (const item of batch) {
      try {
        const fd = openSync(this.incomingPath(item.msgid), 'r+');
        try {
          cutTrailer(fd, fstatSync(fd).size, item.size);
        } finally {
          closeSync(fd);
        }
      } catch {
        // the retry checks the size again
      }
    }
  }

  async discard(msgid: string): Promise<void> {
    this.recycled.delete(msgid);
    await rm(this.incomingPath(msgid), { force: true });
  }

  async openBody(msgid: string): Promise<BodyHandle> {
    const s = this.stored.get(msgid) ?? (await this.read(msgid));
    if (!s) throw new QueueError('notfound', `message ${msgid} not found`);
    return { path: this.messagePath(msgid), size: s.bodySize, release: async () => {} };
  }

  async loadEnvelope(evpid: string): Promise<Envelope | undefined> {
    if (!isEvpid(evpid)) return undefined;
    const msgid = msgidOf(evpid);
    const s = this.stored.get(msgid) ?? (await this.read(msgid));
    return s?.envelopes.get(evpid);
  }

  async updateEnvelopes(envelopes: Envelope[]): Promise<void> {
    const touched = new Set<string>();
    for (const e of envelopes) {
      const s = this.stored.get(e.msgid) ?? (await this.read(e.msgid));
      if (!s?.envelopes.has(e.id)) throw new QueueError('notfound', `envelope ${e.id} not found`);
    }
    for (const e of envelopes) {
      this.stored.get(e.msgid)!.envelopes.set(e.id, e);
      touched.add(e.msgid);
    }
    try {
      await Promise.all([...touched].map((msgid) => this.serially(msgid, () => this.writeSidecar(msgid, true))));
      await this.durable.fsyncDir(this.queue);
    } catch (err) {
      throw QueueError.from(err, 'update envelope');
    }
  }

  async deleteEnvelopes(evpids: string[]): Promise<void> {
    const touched = new Set<string>();
    for (const evpid of evpids) {
      const msgid = msgidOf(evpid);
      const s = this.stored.get(msgid) ?? (await this.read(msgid));
      if (s?.envelopes.delete(evpid)) touched.add(msgid);
    }
    try {
      await Promise.all([...touched].map((msgid) => this.serially(msgid, async () => {
        const s = this.stored.get(msgid);
        if (s && s.envelopes.size > 0) return this.writeSidecar(msgid, false);
        this.stored.delete(msgid);
        await this.removeMessage(msgid, s?.sidecar !== false, s?.bodySize);
      })));
    } catch (err) {
      throw QueueError.from(err, 'delete envelope');
    }
  }

  private serially(msgid: string, fn: () => Promise<void>): Promise<void> {
    const next = (this.chains.get(msgid) ?? Promise.resolve()).then(fn, fn);
    const tail = next.catch(() => {}).then(() => {
      if (this.chains.get(msgid) === tail) this.chains.delete(msgid);
    });
    this.chains.set(msgid, tail);
    return next;
  }

  /** The sidecar holds the message's envelopes as they are now; durable for updates only (the caller fsyncs queue/). */
  private async writeSidecar(msgid: string, durable: boolean): Promise<void> {
    const s = this.stored.get(msgid);
    if (!s) return;
    const tmp = join(this.queue, `.${msgid}.${randomBytes(4).toString('hex')}`);
    try {
      this.durable.step('write');
      const fh = await open(tmp, 'wx', 0o600);
      try {
        await writeAll(fh, encodeRecords(s.envelopes.values(), this.records), 0);
        if (durable) await syncHandle(this.durable, fh);
      } finally {
        await fh.close();
      }
      this.durable.step('rename');
      await rename(tmp, this.sidecarPath(msgid));
      s.sidecar = true;
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => {});
      throw err;
    }
  }

  /**
   * The message file first, kept as a spare when it is small (`bodySize`, when known) and the pool
   * has room: a sidecar left by a crash without its message is dropped at the next walk. Only a
   * sidecar known to exist is unlinked (no failing call per delivered message).
   */
  private async removeMessage(msgid: string, sidecar = true, bodySize = Infinity): Promise<void> {
    const message = this.messagePath(msgid);
    ifPresent(() => this.spares.keep(message, msgid, bodySize) || unlinkSync(message));
    if (sidecar) ifPresent(() => unlinkSync(this.sidecarPath(msgid)));
  }

  /** Read a message back from disk (at start, or one put in the queue by hand). */
  private async read(msgid: string): Promise<Stored | undefined> {
    if (!isMsgid(msgid) || this.sealing.has(msgid)) return undefined;
    let fh: FileHandle;
    try {
      fh = await open(this.messagePath(msgid), 'r');
    } catch (err) {
      if (missing(err)) return undefined;
      throw QueueError.from(err, 'load message');
    }
    let bodySize: number;
    let block: string;
    try {
      const { size } = await fh.stat();
      const t = await readTrailer(fh, size);
      if (!t || t.bodySize + t.blockSize + TRAILER_LEN !== size) throw new QueueError('io', 'message file has no valid trailer');
      bodySize = t.bodySize;
      block = (await readAt(fh, t.bodySize, t.blockSize)).toString('utf8');
    } catch (err) {
      if (err instanceof QueueError) return { bodySize: -1, envelopes: new Map(), damaged: new Map([[msgid, { text: '', reason: err.message }]]) };
      throw QueueError.from(err, 'load message');
    } finally {
      await fh.close();
    }
    // the sidecar, when there is a readable one, is newer than the block
    const sideText = await readFile(this.sidecarPath(msgid), 'utf8').catch(() => null);
    const side = sideText === null ? null : decodeRecords(sideText);
    const records = side ?? decodeRecords(block) ?? [];
    const s: Stored = { bodySize, envelopes: new Map(), damaged: new Map(), sidecar: sideText !== null };
    for (const [evpid, text] of records) {
      const d = msgidOf(evpid) === msgid ? this.records.decode(recordFromText(text), evpid) : { ok: false as const, reason: 'envelope of another message' };
      if (d.ok) s.envelopes.set(evpid, d.envelope);
      else s.damaged!.set(evpid, { text, reason: d.reason });
    }
    this.stored.set(msgid, s);
    return s;
  }

  async *walk(): AsyncIterable<WalkEntry> {
    for await (const msgid of this.messages()) {
      const s = this.stored.get(msgid) ?? (await this.read(msgid));
      if (!s) continue;
      if (s.bodySize < 0) {
        this.stored.delete(msgid);
        yield { damaged: msgid, reason: s.damaged?.get(msgid)?.reason ?? 'unreadable message' };
        continue;
      }
      for (const [evpid, { reason }] of s.damaged ?? []) yield { damaged: evpid, reason };
      if (s.envelopes.size === 0 && !s.damaged?.size) {
        // crashed between deleting the last envelope's record and the message
        this.stored.delete(msgid);
        await this.removeMessage(msgid, true, s.bodySize);
        continue;
      }
      for (const e of [...s.envelopes.values()].sort((a, b) => a.id.localeCompare(b.id))) yield { envelope: e };
    }
    this.complete = true;
  }

  async *messages(): AsyncIterable<string> {
    const names = await readdir(this.queue);
    const present = new Set(names);
    for (const name of names.sort()) {
      if (isMsgid(name)) yield name;
      // a sidecar whose message went before it (a crash in removeMessage)
      else if (name.endsWith(SIDECAR) && isMsgid(name.slice(0, -SIDECAR.length)) && !present.has(name.slice(0, -SIDECAR.length))) {
        await unlink(join(this.queue, name)).catch(() => {});
      } else if (name.startsWith('.') && !this.chains.size) await unlink(join(this.queue, name)).catch(() => {});
    }
  }

  async hasMessage(msgid: string): Promise<boolean> {
    // a message being sealed is already out of incoming/: its id is taken all the same
    if (this.stored.has(msgid) || this.sealing.has(msgid)) return true;
    return !this.complete && (await stat(this.messagePath(msgid)).then(() => true, () => false));
  }

  purgeIncoming(): Promise<number> {
    return purgeScratch(this.incoming, this.temporary);
  }

  async quarantine(id: string, reason: string): Promise<void> {
    void reason;
    const stamp = randomBytes(4).toString('hex');
    if (isMsgid(id)) {
      this.stored.delete(id);
      await rename(this.messagePath(id), join(this.corrupt, `${id}.${stamp}`)).catch(() => {});
      await rename(this.sidecarPath(id), join(this.corrupt, `${id}${SIDECAR}.${stamp}`)).catch(() => {});
      return;
    }
    if (!isEvpid(id)) return;
    const msgid = msgidOf(id);
    const s = this.stored.get(msgid);
    const text = s?.damaged?.get(id)?.text;
    if (!s || text === undefined) return;
    // the bad record is kept for the operator; the message keeps its good envelopes
    await writeFileExclusive(join(this.corrupt, `${id}.${stamp}`), text).catch(() => {});
    s.damaged!.delete(id);
    if (s.envelopes.size === 0) return this.quarantine(msgid, reason);
    await this.serially(msgid, () => this.writeSidecar(msgid, true));
    await this.durable.fsyncDir(this.queue);
  }
}

/** Cut a trailer that records `bodySize` off the file of `size` octets, back to the body; false when there is none. */
function cutTrailer(fd: number, size: number, bodySize: number): boolean {
  if (size < bodySize + TRAILER_LEN) return false;
  const buf = Buffer.alloc(TRAILER_LEN);
  if (readSync(fd, buf, 0, TRAILER_LEN, size - TRAILER_LEN) !== TRAILER_LEN || parseTrailer(buf)?.bodySize !== bodySize) return false;
  ftruncateSync(fd, bodySize);
  return true;
}

/** The trailer at the end of a message file, or null when there is none. */
async function readTrailer(fh: FileHandle, size: number): Promise<ReturnType<typeof parseTrailer>> {
  return size < TRAILER_LEN ? null : parseTrailer(await readAt(fh, size - TRAILER_LEN, TRAILER_LEN));
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  for (let off = 0; off < length;) {
    const { bytesRead } = await fh.read(buf, off, length - off, position + off);
    if (bytesRead === 0) throw new QueueError('io', 'message file is shorter than its trailer says');
    off += bytesRead;
  }
  return buf;
}

async function writeFileExclusive(path: string, text: string): Promise<void> {
  const fh = await open(path, 'wx', 0o600);
  try {
    await fh.writeFile(text);
  } finally {
    await fh.close();
  }
}
