/**
 * Frames for the bus between processes: a 4-octet big-endian length, then the message in V8's
 * serialization (what structuredClone copies: plain data, Maps, Buffers; never functions). The
 * decoder takes bytes as they arrive and yields whole messages; a frame over the limit is a
 * broken or hostile peer, and the link is closed rather than the memory spent.
 */
import { deserialize, serialize } from 'node:v8';

/** Bodies move in chunks far below this; a control listing is streamed, not sent whole. */
export const MAX_FRAME = 64 * 1024 * 1024;

export class FrameError extends Error {
  override name = 'FrameError';
}

export function encodeFrame(message: unknown): Buffer {
  const payload = serialize(message);
  if (payload.length > MAX_FRAME) throw new FrameError(`frame of ${payload.length} octets is over the ${MAX_FRAME} limit`);
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(payload.length, 0);
  return Buffer.concat([head, payload]);
}

export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /** Feed bytes; returns the messages completed by them. Throws FrameError on a bad frame. */
  push(chunk: Buffer): unknown[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: unknown[] = [];
    while (this.buffered >= 4) {
      const head = this.peek(4);
      const length = head.readUInt32BE(0);
      if (length > MAX_FRAME) throw new FrameError(`frame of ${length} octets is over the ${MAX_FRAME} limit`);
      if (this.buffered < 4 + length) break;
      const frame = this.take(4 + length);
      try {
        out.push(deserialize(frame.subarray(4)));
      } catch (err) {
        throw new FrameError(`undecodable frame: ${(err as Error).message}`);
      }
    }
    return out;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const frame = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    return frame;
  }
}
