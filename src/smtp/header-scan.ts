/**
 * The header section of a body as it streams past, changed as OpenSMTPD's smtp_tx_dataline()
 * changes it: `Bcc:` fields are left out, the addresses of `To:`, `Cc:` and `From:` without a
 * domain get the listener's hostname (header-domain.ts), `Received:` hops are counted for loop
 * detection and, where the caller asks for it (the local socket and port 587), `Date:` and
 * `Message-ID:` are inserted just before the blank line when the client left them out; with
 * `senders <t> masquerade`, From: names the envelope sender (masquerade.ts).
 *
 * Memory stays bounded: one header line is held (a longer one passes whole, or is dropped whole
 * inside a Bcc field), a To/Cc/From field up to MAX_FIELD octets (a longer one passes unchanged,
 * where OpenSMTPD's parser would refuse the message), and past the header section bytes go
 * straight through.
 */
import { appendDomains } from './header-domain.js';
import { masqueradeFrom } from './masquerade.js';

/** A header line longer than this is not inspected further (it still passes through whole). */
const MAX_INSPECTED = 1000;
/** rfc5322.c's value buffer: the longest To/Cc/From field completed. */
const MAX_FIELD = 65_536;

/** What happens to the lines of the current field: passed on, left out (Bcc) or held to complete (To/Cc/From). */
type Field = 'pass' | 'drop' | 'hold';

const ADDRESS_FIELDS = new Set(['to', 'cc', 'from']);

export interface HeaderChanges {
  /** `addHeaders(missing)` returns the header lines to insert (CRLF-terminated), or null for none. */
  addHeaders: ((missing: { messageId: boolean; date: boolean }) => string) | null;
  /** The listener's hostname, for addresses without a domain in To/Cc/From. */
  domain: string;
  /** `senders <t> masquerade`: the address every address of From: becomes (masquerade.ts). */
  masquerade?: string | null;
}

export class HeaderScan {
  hops = 0;
  private inHeaders = true;
  private line: Buffer[] = [];
  private lineLength = 0;
  private seenMessageId = false;
  private seenDate = false;
  /** Inside a header line already dealt with: the rest of it is passed on or dropped. */
  private skipping: 'no' | 'pass' | 'drop' = 'no';
  private field: Field = 'pass';
  private held: Buffer[] = [];
  private heldLength = 0;
  /** How long the line being read may grow, once it is past MAX_INSPECTED (lineLimit). */
  private limit: number | null = null;
  /** The last octet passed on, to know whether output ends inside a line. */
  private last = 0x0a;

  constructor(private readonly changes: HeaderChanges) {}

  /** Bytes in, bytes out (fields changed, headers inserted), in order. */
  push(bytes: Buffer): Buffer[] {
    if (!this.inHeaders) return this.emit([], bytes);
    const out: Buffer[] = [];
    let start = 0;
    while (this.inHeaders && start < bytes.length) {
      const lf = bytes.indexOf(0x0a, start);
      const end = lf === -1 ? bytes.length : lf + 1;
      const piece = bytes.subarray(start, end);
      start = end;
      if (this.skipping !== 'no') {
        if (this.skipping === 'pass') this.emit(out, piece);
        if (lf !== -1) this.skipping = 'no';
        continue;
      }
      this.line.push(piece);
      this.lineLength += piece.length;
      if (lf === -1) {
        // a header line too long to hold is looked at once and dealt with whole
        if (this.lineLength > MAX_INSPECTED && this.lineLength > this.lineLimit()) this.onLine(this.takeLine(), true, out);
        continue;
      }
      const line = this.takeLine();
      if (line.length === 1 || (line.length === 2 && line[0] === 0x0d)) {
        // the blank line: the header section ends here; insert what is missing before it
        this.endField(out);
        this.inHeaders = false;
        const extra = this.missing();
        if (extra) this.emit(out, Buffer.from(extra, 'utf8'));
        this.emit(out, line);
      } else {
        this.onLine(line, false, out);
      }
    }
    if (start < bytes.length) this.emit(out, bytes.subarray(start));
    return out;
  }

  /**
   * End of body: a message with no blank line at all is all headers; what is held goes out, and
   * what is missing is added after it (on a line of its own), as it would be before a blank line.
   */
  end(): Buffer[] {
    const out: Buffer[] = [];
    if (this.line.length) this.onLine(this.takeLine(), false, out);
    this.endField(out);
    if (!this.inHeaders) return out;
    this.inHeaders = false;
    const extra = this.missing();
    if (extra) this.emit(out, Buffer.from(`${this.last === 0x0a ? '' : '\r\n'}${extra}`, 'utf8'));
    return out;
  }

  /** How long the line being read may grow: a To/Cc/From field is held whole, up to MAX_FIELD. */
  private lineLimit(): number {
    if (this.limit !== null) return this.limit;
    const head = this.line[0]!;
    if (head[0] === 0x20 || head[0] === 0x09) this.limit = this.field === 'hold' ? MAX_FIELD - this.heldLength : MAX_INSPECTED;
    else {
      const name = fieldName(Buffer.concat(this.line).subarray(0, MAX_INSPECTED + 1));
      this.limit = name !== null && ADDRESS_FIELDS.has(name) ? MAX_FIELD : MAX_INSPECTED;
    }
    return this.limit;
  }

  /** One header line (or the first octets of a longer one than it may hold, `partial`). */
  private onLine(line: Buffer, partial: boolean, out: Buffer[]): void {
    if (line[0] === 0x20 || line[0] === 0x09) {
      // a continuation line belongs to the field before it
      if (this.field === 'drop') {
        if (partial) this.skipping = 'drop';
        return;
      }
      if (this.field === 'hold' && !partial && this.heldLength + line.length <= MAX_FIELD) {
        this.held.push(line);
        this.heldLength += line.length;
        return;
      }
      if (this.field === 'hold') this.release(out);
      this.emit(out, line);
      if (partial) this.skipping = 'pass';
      return;
    }
    this.endField(out);
    const name = fieldName(line);
    if (name === 'received') this.hops++;
    else if (name === 'message-id') this.seenMessageId = true;
    else if (name === 'date') this.seenDate = true;
    if (name === 'bcc') {
      this.field = 'drop';
      if (partial) this.skipping = 'drop';
      return;
    }
    if (name !== null && ADDRESS_FIELDS.has(name) && !partial && line.length <= MAX_FIELD) {
      this.field = 'hold';
      this.held = [line];
      this.heldLength = line.length;
      return;
    }
    this.field = 'pass';
    this.emit(out, line);
    if (partial) this.skipping = 'pass';
  }

  /** The field before the next one (or the blank line) is complete: a held one goes out completed. */
  private endField(out: Buffer[]): void {
    if (this.field === 'hold') {
      const text = Buffer.concat(this.held).toString('latin1');
      const colon = text.indexOf(':');
      let value = appendDomains(text.slice(colon + 1), this.changes.domain);
      // each address completed, then (From: alone) replaced by the sender, as the callback does
      const { masquerade } = this.changes;
      if (masquerade && text.slice(0, colon).toLowerCase() === 'from') value = masqueradeFrom(value, Buffer.from(masquerade, 'utf8').toString('latin1'));
      this.emit(out, Buffer.from(text.slice(0, colon + 1) + value, 'latin1'));
      this.held = [];
      this.heldLength = 0;
    }
    this.field = 'pass';
  }

  /** A held field too long to complete goes out as it came. */
  private release(out: Buffer[]): void {
    for (const b of this.held) this.emit(out, b);
    this.held = [];
    this.heldLength = 0;
    this.field = 'pass';
  }

  private takeLine(): Buffer {
    const line = Buffer.concat(this.line);
    this.line = [];
    this.lineLength = 0;
    this.limit = null;
    return line;
  }

  private emit(out: Buffer[], b: Buffer): Buffer[] {
    if (b.length) {
      out.push(b);
      this.last = b[b.length - 1]!;
    }
    return out;
  }

  private missing(): string | null {
    if (!this.changes.addHeaders || (this.seenMessageId && this.seenDate)) return null;
    return this.changes.addHeaders({ messageId: !this.seenMessageId, date: !this.seenDate });
  }
}

/** rfc5322.c's header name: everything before the colon, compared case-blind; null for a line with none. */
function fieldName(line: Buffer): string | null {
  const colon = line.indexOf(0x3a);
  if (colon === -1 || colon > MAX_INSPECTED) return null;
  return line.subarray(0, colon).toString('latin1').toLowerCase();
}
