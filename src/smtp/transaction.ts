/**
 * One mail transaction, MAIL FROM to the end of DATA or BDAT LAST: the sender and its
 * parameters, the accepted recipients, and the body on its way to the queue. The envelopes made
 * of the recipients stay in the lka, which hands them to the queue at commit: this process,
 * which reads the internet, never holds one. It never replies by itself; the session turns its
 * outcomes into replies.
 */
import { randomHex } from '../random-hex.js';
import type { Endpoint } from '../bus/bus.js';
import type { DsnParams } from '../queue/envelope.js';
import type { Reply } from './reply.js';
import { MessageWriter } from './message-writer.js';
import { HeaderScan, type HeaderChanges } from './header-scan.js';
import type { FilteredBody } from './filter-client.js';

export interface MailParams {
  size?: number;
  body?: '7BIT' | '8BITMIME' | 'BINARYMIME';
  smtputf8: boolean;
  ret?: 'FULL' | 'HDRS';
  envid?: string;
}

export interface BodyFlags {
  bareLf: boolean;
  bareCr: boolean;
  longLine: boolean;
}

/** RFC 5321 §6.3 / OpenSMTPD: more Received: headers than this is a mail loop. */
export const MAX_HOPS = 100;

export class Transaction {
  readonly rcpts: { rcpt: string; dsn: DsnParams }[] = [];
  msgid: string | null = null;
  /** The queue's answer to the create sent at MAIL FROM. */
  private creating: Promise<{ msgid: string }> | null = null;
  private writer: MessageWriter | null = null;
  private scan: HeaderScan | null = null;
  /** The stored envelopes, once committed: each with the RCPT address it came from. */
  envelopes: { evpid: string; rcpt: string }[] = [];
  /** Octets of the body received, whether written or not (SIZE is enforced on this). */
  received = 0;
  tooBig = false;
  /** A NUL byte came in the body: the message is refused (see Session.body). */
  hasNul = false;
  /** BDAT was used: DATA is no longer allowed in this transaction, and the reverse. */
  chunking = false;
  /** The transaction's id in filter report events (tx-begin ... tx-commit). */
  readonly txid = randomHex(4);
  /** A filter marked it as spam: `X-Spam: yes` and junk envelopes. */
  junk = false;
  /** The body goes through data-line filters before it is stored. */
  filtered: FilteredBody | null = null;
  /** The data-line filters failed: the message cannot be accepted. */
  filterError: Error | null = null;

  constructor(
    readonly sessionId: string,
    readonly sender: string,
    readonly params: MailParams,
    private readonly maxSize: number,
  ) {}

  /**
   * MAIL FROM accepted: the queue makes the message now, as smtp_tx_create_message() does, while
   * the client sends its recipients (the lka gives each recipient's envelopes to this message).
   */
  begin(bus: Endpoint): void {
    this.creating = bus.request('smtp.message.create', { sessionId: this.sessionId });
    this.creating.catch(() => undefined);
  }

  /** The message the queue made for this transaction (begin() first); throws when it could not. */
  async message(bus: Endpoint): Promise<string> {
    if (!this.creating) this.begin(bus);
    return (await this.creating!).msgid;
  }

  /** Write the trace header first, through the data-line filters if any. */
  async open(bus: Endpoint, trace: (msgid: string) => string, changes: HeaderChanges): Promise<void> {
    const msgid = await this.message(bus);
    this.msgid = msgid;
    this.writer = new MessageWriter(bus, msgid);
    this.scan = new HeaderScan(changes);
    if (!this.filtered) {
      this.writer.write(trace(msgid));
      return;
    }
    // the filters get the daemon's own lines as the first lines of the message; what they send
    // back is stored through the header scan like the rest
    await this.filtered.push(Buffer.from(trace(msgid), 'utf8')).catch((err: Error) => (this.filterError = err));
  }

  get opened(): boolean {
    return this.writer !== null;
  }

  /** Body bytes; returns false when the caller should wait for `drained()`. */
  write(bytes: Buffer): boolean {
    return this.account(bytes.length) ? this.store(bytes) : true;
  }

  /** Count octets received from the client; false once the message is over the size limit. */
  account(octets: number): boolean {
    this.received += octets;
    if (this.received > this.maxSize) this.tooBig = true;
    return !this.tooBig;
  }

  /** Write body bytes to the message file (filtered ones are counted on input, not here). */
  store(bytes: Buffer): boolean {
    if (this.tooBig || !this.writer || !this.scan) return true;
    let ok = true;
    for (const part of this.scan.push(bytes)) ok = this.writer.write(part) && ok;
    return ok;
  }

  drained(): Promise<void> {
    return this.writer ? this.writer.drained() : Promise.resolve();
  }

  /** Why the body cannot be accepted, or null; checked once the whole body is in. */
  refusal(flags: BodyFlags): Reply | null {
    if (this.tooBig) return { code: 552, enhanced: '5.3.4', text: 'Message too large' };
    if (this.hasNul) return { code: 550, enhanced: '5.6.0', text: 'NUL byte in message data' };
    if (flags.bareLf || flags.bareCr) {
      // a bare CR or LF is how SMTP smuggling starts (CVE-2023-51764): such a message is refused whole
      return { code: 550, enhanced: '5.5.2', text: 'Bare CR or LF in message data (RFC 5321 §2.3.8)' };
    }
    if (flags.longLine) return { code: 550, enhanced: '5.5.2', text: 'Line too long (RFC 5322 §2.1.1: 998 octets)' };
    if (this.scan && this.scan.hops > MAX_HOPS) return { code: 554, enhanced: '5.4.6', text: 'Too many hops' };
    return null;
  }

  /** Send the rest of the body with the commit: the queue stores it with the lka's envelopes, durably. */
  async commit(bus: Endpoint): Promise<Reply> {
    if (!this.writer || !this.msgid || !this.scan) throw new Error('transaction has no message');
    for (const part of this.scan.end()) this.writer.write(part);
    const writer = this.writer;
    const data = await writer.finish();
    this.writer = null;
    const res = await bus.request('smtp.message.commit', { msgid: this.msgid, size: writer.bytes, rcpts: this.rcpts.length, junk: this.junk, data });
    if (res.result !== 'ok') {
      this.msgid = null;
      return { code: res.reply.code, enhanced: res.reply.enhanced ?? '4.3.0', text: res.reply.text };
    }
    this.envelopes = res.envelopes;
    return { code: 250, enhanced: '2.0.0', text: `${this.msgid} Message accepted for delivery` };
  }

  /** Drop the message, if any, and the recipients the lka staged; safe to call at any point and more than once. */
  async rollback(bus: Endpoint): Promise<void> {
    this.writer?.abort();
    this.writer = null;
    const creating = this.creating;
    this.creating = null;
    this.msgid = null;
    bus.notify('smtp.tx.reset', { sessionId: this.sessionId });
    // a message created at MAIL FROM is dropped too, once the queue has said which it is
    const msgid = await creating?.then((r) => r.msgid, () => null);
    if (msgid) await bus.request('smtp.message.rollback', { msgid }).catch(() => undefined);
  }
}
