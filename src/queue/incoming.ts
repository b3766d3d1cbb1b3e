/**
 * Bodies under reception: the queue writes the chunks an smtp worker streams to it into the
 * message's incoming file, in order, each write carried to its end (a short write is resumed,
 * never ignored). The first error is kept and fails the commit. Each message belongs to the
 * process that created it: another worker cannot write to it, commit it or drop it, and a worker
 * that dies takes its unfinished messages with it.
 */
import { writeSync } from 'node:fs';
import { closeQuietly } from './durable.js';
import { INLINE_MAX } from './body-readers.js';

export class IncomingError extends Error {
  override name = 'IncomingError';
}

interface Body {
  owner: string;
  /** The octets written so far, while the body is small enough to be kept in memory (see BodyCache). */
  chunks: Buffer[] | null;
  fd: number | null;
  /** Writes are chained: each waits for the one before, so bytes land in order. */
  chain: Promise<void>;
  written: number;
  error: Error | null;
}

export class IncomingBodies {
  private readonly bodies = new Map<string, Body>();

  /** Take the incoming file of `msgid`, open at its first octet (new, or a recycled one the commit cuts), for `owner`'s chunks. */
  open(msgid: string, fd: number, owner: string): void {
    this.bodies.set(msgid, { owner, fd, chunks: [], chain: Promise.resolve(), written: 0, error: null });
  }

  owned(msgid: string, owner: string): boolean {
    return this.bodies.get(msgid)?.owner === owner;
  }

  /** Queue `data` for writing; resolves once it is written (so the sender is paced by the disk). */
  write(msgid: string, owner: string, data: Buffer): Promise<void> {
    const body = this.get(msgid, owner);
    body.chain = body.chain.then(() => this.writeAll(body, data));
    return body.chain;
  }

  /**
   * Write the last bytes and return how many octets the file holds, with the file still open (the
   * caller closes it: the commit fsyncs through it); throws the first error, the file closed.
   */
  async finish(msgid: string, owner: string, data: Buffer): Promise<{ written: number; fd: number; kept: Buffer | null }> {
    const body = this.get(msgid, owner);
    await this.write(msgid, owner, data).catch(() => undefined);
    this.bodies.delete(msgid);
    const fd = body.fd!;
    body.fd = null;
    if (body.error) {
      closeQuietly(fd);
      throw body.error;
    }
    return { written: body.written, fd, kept: body.chunks && Buffer.concat(body.chunks, body.written) };
  }

  /** Forget a message (rollback); its file is the caller's to remove. */
  async drop(msgid: string, owner: string): Promise<boolean> {
    const body = this.bodies.get(msgid);
    if (!body || body.owner !== owner) return false;
    this.bodies.delete(msgid);
    await body.chain.catch(() => undefined);
    if (body.fd !== null) closeQuietly(body.fd);
    body.fd = null;
    return true;
  }

  /** The messages a process had under way when it went away. */
  ownedBy(owner: string): string[] {
    return [...this.bodies].filter(([, b]) => b.owner === owner).map(([msgid]) => msgid);
  }

  private get(msgid: string, owner: string): Body {
    const body = this.bodies.get(msgid);
    if (!body || body.owner !== owner) throw new IncomingError(`no message ${msgid} under reception for ${owner}`);
    return body;
  }

  private async writeAll(body: Body, data: Buffer): Promise<void> {
    if (body.error) throw body.error;
    if (body.chunks && body.written + data.length <= INLINE_MAX) body.chunks.push(data);
    else body.chunks = null;
    try {
      for (let off = 0; off < data.length;) {
        // a plain write(2) on the loop: cheaper than a trip through the thread pool, as queue_fs.c writes
        const bytesWritten = writeSync(body.fd!, data, off, data.length - off);
        if (bytesWritten <= 0) throw new IncomingError('write made no progress');
        off += bytesWritten;
        body.written += bytesWritten;
      }
    } catch (err) {
      body.error ??= err as Error;
      throw body.error;
    }
  }
}

