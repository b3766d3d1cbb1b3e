/**
 * Streams a message body, as it arrives, to the queue process: bytes gathered into chunks, a
 * few chunks in flight at once, the session paused while more are outstanding (back-pressure
 * all the way to the disk). The last chunk rides with the commit, so a small message costs one
 * request. The first failure is kept: the transaction then ends in 451, never in a 250 for a
 * message the queue did not get whole.
 */
import type { Endpoint } from '../bus/bus.js';

const CHUNK = 64 * 1024;
/** Chunks sent and not yet answered before the writer asks the session to wait. */
const WINDOW = 4;

export class MessageWriter {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private inflight = 0;
  private waiters: (() => void)[] = [];
  private error: Error | null = null;
  private aborted = false;
  /** Octets handed to the writer; the queue checks it stored exactly this many. */
  bytes = 0;

  constructor(
    private readonly bus: Endpoint,
    readonly msgid: string,
  ) {}

  /** Returns false when the caller should wait for `drained()` before writing more. */
  write(chunk: Buffer | string): boolean {
    if (this.error || this.aborted) return true;
    const b = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    this.bytes += b.length;
    this.buffered.push(b);
    this.bufferedBytes += b.length;
    if (this.bufferedBytes >= CHUNK) this.send(this.take());
    return this.inflight < WINDOW;
  }

  drained(): Promise<void> {
    if (this.inflight < WINDOW || this.error) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Wait for every chunk sent; returns the bytes not yet sent (they go with the commit). Rejects with the first error. */
  async finish(): Promise<Buffer> {
    while (this.inflight > 0 && !this.error) await new Promise<void>((resolve) => this.waiters.push(resolve));
    if (this.error) throw this.error;
    return this.take();
  }

  abort(): void {
    this.aborted = true;
    this.buffered = [];
    this.bufferedBytes = 0;
  }

  private take(): Buffer {
    const data = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered);
    this.buffered = [];
    this.bufferedBytes = 0;
    return data;
  }

  private send(data: Buffer): void {
    this.inflight++;
    this.bus.request('smtp.message.write', { msgid: this.msgid, data }).then(
      () => this.settle(null),
      (err: Error) => this.settle(err),
    );
  }

  private settle(err: Error | null): void {
    this.inflight--;
    this.error ??= err;
    for (const wake of this.waiters.splice(0)) wake();
  }
}
