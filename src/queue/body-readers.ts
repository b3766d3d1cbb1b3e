/**
 * Message bodies on their way to a delivery: the mta and the mda cannot open the spool (it is
 * the queue user's, mode 0700), so the queue sends a small body along with the delivery request
 * and lets a larger one be read in chunks under a token that lives as long as the delivery.
 */
import { randomBytes } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import type { BodyRef } from '../bus/messages.js';
import type { BodyHandle } from './backend.js';

/** Bodies up to this size travel inside the delivery request: most mail, in one message. */
export const INLINE_MAX = 256 * 1024;
/** A reader asks for at most this much at once. */
export const MAX_READ = 1024 * 1024;

interface Reader {
  body: BodyHandle;
  file: FileHandle;
}

export class BodyReaders {
  private readonly readers = new Map<string, Reader>();

  /** The reference a delivery request carries; `close` it when the delivery is over. */
  async open(msgid: string, body: BodyHandle): Promise<BodyRef> {
    let file: FileHandle | null = null;
    try {
      const { size } = body;
      if (size <= INLINE_MAX) {
        file = await open(body.path, 'r');
        const inline = Buffer.alloc(size);
        for (let off = 0; off < size;) {
          const { bytesRead } = await file.read(inline, off, size - off, off);
          if (bytesRead === 0) throw new Error(`body of ${msgid} is shorter than its ${size} octets`);
          off += bytesRead;
        }
        await file.close();
        await body.release();
        return { msgid, size, inline };
      }
      file = await open(body.path, 'r');
      const token = randomBytes(16).toString('hex');
      this.readers.set(token, { body, file });
      return { msgid, size, token };
    } catch (err) {
      await file?.close().catch(() => undefined);
      await body.release();
      throw err;
    }
  }

  async read(token: string, offset: number, length: number): Promise<{ data: Buffer }> {
    const r = this.readers.get(token);
    if (!r) throw new Error('no such body reader (the delivery is over)');
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) throw new Error('bad body read');
    // never past the body: the fs queue keeps the message's envelopes after it
    const data = Buffer.alloc(Math.max(0, Math.min(length, MAX_READ, r.body.size - offset)));
    const { bytesRead } = await r.file.read(data, 0, data.length, offset);
    return { data: data.subarray(0, bytesRead) };
  }

  async close(ref: BodyRef): Promise<void> {
    const r = ref.token ? this.readers.get(ref.token) : undefined;
    if (!r || !ref.token) return;
    this.readers.delete(ref.token);
    await r.file.close().catch(() => undefined);
    await r.body.release();
  }

  async closeAll(): Promise<void> {
    for (const token of [...this.readers.keys()]) await this.close({ msgid: '', size: 0, token });
  }
}
