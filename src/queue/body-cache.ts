/**
 * Small bodies kept in memory from their commit to their delivery, so the usual message is
 * written once and never read back: the queue opens the file only after a restart, for a body
 * this cache let go, or for one too big to keep. Bounded in octets; the oldest go first.
 */
import { INLINE_MAX } from './body-readers.js';

/** What all kept bodies may take together. */
export const CACHE_MAX = 32 * 1024 * 1024;

interface Kept {
  body: Buffer;
  /** Envelopes not yet delivered or failed for good: at 0 the body is not needed any more. */
  remaining: number;
}

export class BodyCache {
  private readonly kept = new Map<string, Kept>();
  private octets = 0;

  constructor(private readonly max = CACHE_MAX) {}

  /** Keep the body of a committed message with `envelopes` envelopes (too big a body is not kept). */
  set(msgid: string, body: Buffer, envelopes: number): void {
    this.delete(msgid);
    if (body.length > INLINE_MAX || body.length > this.max) return;
    for (const [old] of this.kept) {
      if (this.octets + body.length <= this.max) break;
      this.delete(old);
    }
    this.kept.set(msgid, { body, remaining: envelopes });
    this.octets += body.length;
  }

  get(msgid: string): Buffer | undefined {
    return this.kept.get(msgid)?.body;
  }

  /** `count` envelopes of the message left the queue. */
  settle(msgid: string, count: number): void {
    const k = this.kept.get(msgid);
    if (k && (k.remaining -= count) <= 0) this.delete(msgid);
  }

  /**
   * Forget a message. A msgid is reused only once its message is gone, so a new message's id
   * deletes whatever a removal that did not settle (tsmtpctl remove, expiry) left here.
   */
  delete(msgid: string): void {
    const k = this.kept.get(msgid);
    if (!k) return;
    this.kept.delete(msgid);
    this.octets -= k.body.length;
  }

  get size(): number {
    return this.octets;
  }
}
