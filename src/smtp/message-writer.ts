/**
 * Writes a message body, as it streams in, to the file the queue handed out: in order, with
 * back-pressure (the session pauses its socket while the disk catches up), and with the first
 * write error kept so the transaction ends in 451 instead of an acknowledged, truncated message.
 */
import { createWriteStream, type WriteStream } from 'node:fs';

export class MessageWriter {
  private readonly stream: WriteStream;
  private error: Error | null = null;
  bytes = 0;

  constructor(path: string) {
    // the queue created the file; 'r+' refuses to write anywhere it did not prepare
    this.stream = createWriteStream(path, { flags: 'r+', highWaterMark: 256 * 1024 });
    this.stream.on('error', (err) => {
      this.error ??= err;
    });
  }

  /** Returns false when the caller should wait for `drained()` before writing more. */
  write(chunk: Buffer | string): boolean {
    if (this.error) return true;
    this.bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    return this.stream.write(chunk);
  }

  drained(): Promise<void> {
    if (!this.stream.writableNeedDrain || this.error) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.stream.off('drain', done);
        this.stream.off('error', done);
        resolve();
      };
      this.stream.on('drain', done);
      this.stream.on('error', done);
    });
  }

  /**
   * Close the file; rejects with the first error seen. end()'s callback gets a failed write
   * (ENOSPC) before the 'error' event does, so it is read there: a short file never passes as
   * whole. Durability is the queue's commit's job; it also checks the file holds `bytes` octets.
   */
  async finish(): Promise<void> {
    if (!this.error) {
      await new Promise<void>((resolve) => {
        this.stream.end((err?: Error | null) => {
          if (err) this.error ??= err;
          resolve();
        });
      });
    } else {
      this.stream.destroy();
    }
    if (this.error) throw this.error;
  }

  abort(): void {
    this.stream.destroy();
  }
}
