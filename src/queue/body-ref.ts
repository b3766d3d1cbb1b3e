/**
 * The reading side of a body the queue hands out with a delivery (body-readers.ts): the bytes
 * inline, or read in chunks over the bus. A delivery may read its body more than once (the mda
 * scans it for a loop before delivering it), so each `open()` starts again from the first octet.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { BodyRef } from '../bus/messages.js';

const CHUNK = 256 * 1024;

export interface MessageBody {
  size: number;
  open(): Readable;
}

export type ChunkReader = (token: string, offset: number, length: number) => Promise<Buffer>;

export function messageBody(ref: BodyRef, read: ChunkReader): MessageBody {
  return {
    size: ref.size,
    open() {
      if (ref.inline) return Readable.from([Buffer.from(ref.inline)], { objectMode: false });
      return Readable.from(chunks(ref, read), { objectMode: false });
    },
  };
}

async function* chunks(ref: BodyRef, read: ChunkReader): AsyncGenerator<Buffer> {
  if (!ref.token) throw new Error(`body of ${ref.msgid} has neither bytes nor a reader`);
  for (let offset = 0; offset < ref.size;) {
    const data = await read(ref.token, offset, Math.min(CHUNK, ref.size - offset));
    if (data.length === 0) throw new Error(`body of ${ref.msgid} ended at ${offset} of ${ref.size} octets`);
    offset += data.length;
    yield data;
  }
}

/** A body already in memory (bounces, tests). */
export function bufferBody(data: Buffer): MessageBody {
  return { size: data.length, open: () => Readable.from([data], { objectMode: false }) };
}

/** A body in a file this process may read (tests, and roles that share the queue's process). */
export async function fileBody(path: string): Promise<MessageBody> {
  const { size } = await stat(path);
  return { size, open: () => createReadStream(path, { highWaterMark: 64 * 1024 }) };
}
