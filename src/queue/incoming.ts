/**
 * Bodies under reception: the queue writes the chunks an smtp worker streams to it into the
 * message's incoming file, in order, each write carried to its end (a short write is resumed,
 * never ignored). The first error is kept and fails the commit. Each message belongs to the
 * process that created it: another worker cannot write to it, commit it or drop it, and a worker
 * that dies takes its unfinished messages with it.
 */
import { open, type FileHandle } from 'node:fs/promises';

export class IncomingError extends Error {
  override name = 'IncomingError';
}

interface Body {
  owner: string;
  file: FileHandle | null;
  /** Writes are chained: each waits for the one before, so bytes land in order. */
  chain: Promise<void>;
  written: number;
  error: Error | null;
}

export class IncomingBodies {
  private readonly bodies = new Map<string, Body>();

  /** Open the (already created, empty) incoming file of `msgid` for `owner`'s chunks. */
  async open(msgid: string, path: string, owner: string): Promise<void> {
    const file = await open(path, 'r+');
    this.bodies.set(msgid, { owner, file, chain: Promise.resolve(), written: 0, error: null });
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

  /** Write the last bytes, close the file and return how many octets it holds; throws the first error. */
  async finish(msgid: string, owner: string, data: Buffer): Promise<number> {
    const body = this.get(msgid, owner);
    await this.write(msgid, owner, data).catch(() => undefined);
    this.bodies.delete(msgid);
    const file = body.file;
    body.file = null;
    try {
      await file?.close();
    } catch (err) {
      body.error ??= err as Error;
    }
    if (body.error) throw body.error;
    return body.written;
  }

  /** Forget a message (rollback); its file is the caller's to remove. */
  async drop(msgid: string, owner: string): Promise<boolean> {
    const body = this.bodies.get(msgid);
    if (!body || body.owner !== owner) return false;
    this.bodies.delete(msgid);
    await body.chain.catch(() => undefined);
    await body.file?.close().catch(() => undefined);
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
    try {
      for (let off = 0; off < data.length;) {
        const { bytesWritten } = await body.file!.write(data, off, data.length - off);
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
