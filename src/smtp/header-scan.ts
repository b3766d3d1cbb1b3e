/**
 * Watches the header section of a body as it streams past: counts `Received:` hops for loop
 * detection and, on submission listeners, inserts `Message-ID:` and `Date:` just before the blank
 * line when the client left them out; with `senders <t> masquerade`, rewrites From: to name the
 * envelope sender (masquerade.ts). Memory stays bounded: one header line is held (a From: field
 * with its folds, up to MAX_FROM), and past the header section bytes go straight through.
 */
import { masqueradeFrom } from './masquerade.js';

/** A header line longer than this is not inspected further (it still passes through whole). */
const MAX_INSPECTED = 1000;
/** A From: field longer than this passes unchanged (smtpd leaves what overflows its buffer too). */
const MAX_FROM = 8192;

export class HeaderScan {
  hops = 0;
  private inHeaders = true;
  private line: Buffer[] = [];
  private lineLength = 0;
  private seenMessageId = false;
  private seenDate = false;
  /** Inside a header line already passed on: the rest of it goes straight through. */
  private skipping = false;
  /** The last header line seen has no line end yet. */
  private lineOpen = false;

  /** The From: field being held for rewriting, line by line. */
  private from: Buffer[] | null = null;
  private fromLength = 0;

  /**
   * `addHeaders(missing)` returns the header lines to insert (CRLF-terminated), or null for none;
   * `fromSender`, when given, is the address every address of From: becomes.
   */
  constructor(
    private readonly addHeaders: ((missing: { messageId: boolean; date: boolean }) => string) | null,
    private readonly fromSender: string | null = null,
  ) {}

  /** Bytes in, bytes out (possibly with headers inserted), in order. */
  push(bytes: Buffer): Buffer[] {
    if (!this.inHeaders) return [bytes];
    const out: Buffer[] = [];
    let start = 0;
    while (this.inHeaders && start < bytes.length) {
      const lf = bytes.indexOf(0x0a, start);
      const end = lf === -1 ? bytes.length : lf + 1;
      const piece = bytes.subarray(start, end);
      start = end;
      this.lineOpen = lf === -1;
      if (this.skipping) {
        out.push(piece);
        if (lf !== -1) this.skipping = false;
        continue;
      }
      this.line.push(piece);
      this.lineLength += piece.length;
      if (lf === -1) {
        // a header line too long to inspect is looked at once and passed on, not held
        if (this.lineLength > MAX_INSPECTED) out.push(...this.releaseFrom(false), this.takeLine(true));
        continue;
      }
      const line = this.takeLine(false);
      if (this.from) {
        // a fold continues the From: field; anything else ends it
        if ((line[0] === 0x20 || line[0] === 0x09) && this.fromLength + line.length <= MAX_FROM) {
          this.from.push(line);
          this.fromLength += line.length;
          continue;
        }
        out.push(...this.releaseFrom(this.fromLength + line.length <= MAX_FROM || !(line[0] === 0x20 || line[0] === 0x09)));
      }
      if (this.fromSender !== null && line.subarray(0, 5).toString('latin1').toLowerCase() === 'from:') {
        this.from = [line];
        this.fromLength = line.length;
        continue;
      }
      if (line.length === 1 || (line.length === 2 && line[0] === 0x0d)) {
        // the blank line: the header section ends here; insert what is missing before it
        this.inHeaders = false;
        const extra = this.missing();
        if (extra) out.push(Buffer.from(extra, 'utf8'));
      } else {
        this.inspect(line);
      }
      out.push(line);
    }
    if (start < bytes.length) out.push(bytes.subarray(start));
    return out;
  }

  /**
   * End of body: a message with no blank line at all is all headers; what is held goes out, and
   * what is missing is added after it (on a line of its own), as it would be before a blank line.
   */
  end(): Buffer[] {
    const out = this.releaseFrom(true);
    if (this.line.length) out.push(this.takeLine(true));
    if (!this.inHeaders) return out;
    this.inHeaders = false;
    const extra = this.missing();
    if (extra) out.push(Buffer.from(`${this.lineOpen ? '\r\n' : ''}${extra}`, 'utf8'));
    return out;
  }

  /** The held From: field, rewritten (or as it came, when too long to rewrite). */
  private releaseFrom(rewrite: boolean): Buffer[] {
    if (!this.from) return [];
    const field = Buffer.concat(this.from).toString('latin1');
    this.from = null;
    this.fromLength = 0;
    if (!rewrite) return [Buffer.from(field, 'latin1')];
    // byte for byte: the header as latin1, the sender as its UTF-8 octets
    const sender = Buffer.from(this.fromSender!, 'utf8').toString('latin1');
    return [Buffer.from(`${field.slice(0, 5)}${masqueradeFrom(field.slice(5), sender)}`, 'latin1')];
  }

  private takeLine(inspect: boolean): Buffer {
    const line = Buffer.concat(this.line);
    this.line = [];
    this.lineLength = 0;
    if (inspect) {
      this.inspect(line);
      this.skipping = true;
    }
    return line;
  }

  private inspect(line: Buffer): void {
    const head = line.subarray(0, 16).toString('latin1').toLowerCase();
    if (head.startsWith('received:')) this.hops++;
    else if (head.startsWith('message-id:')) this.seenMessageId = true;
    else if (head.startsWith('date:')) this.seenDate = true;
  }

  private missing(): string | null {
    if (!this.addHeaders || (this.seenMessageId && this.seenDate)) return null;
    return this.addHeaders({ messageId: !this.seenMessageId, date: !this.seenDate });
  }
}
