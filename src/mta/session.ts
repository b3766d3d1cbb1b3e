/**
 * One SMTP (or LMTP) client session: greeting, EHLO/HELO, STARTTLS, AUTH, then any number of
 * transactions, each answering per recipient, and QUIT. It knows nothing of relays or retries.
 */
import { randomBytes } from 'node:crypto';
import type { ConnectionOptions, SecureVersion } from 'node:tls';
import type { DeliveryResult } from '../bus/messages.js';
import type { Clock } from '../clock.js';
import type { MessageBody } from '../queue/body-ref.js';
import type { DsnParams } from '../queue/envelope.js';
import { NO_CAPABILITIES, parseCapabilities, type Capabilities } from './capabilities.js';
import { DotStuffer } from './dot-stuff.js';
import { replyText, type Reply } from './reply-parser.js';
import { checkReply } from './reply-steps.js';
import { MtaSessionError } from './session-error.js';
import { mailCommand, rcptCommand, replyResult, utf8Refusal } from './transaction.js';
import { headersNeedUtf8 } from './utf8-headers.js';
import { Wire } from './wire.js';

/** smtps: TLS on connect; required: STARTTLS or fail; opportunistic: STARTTLS when offered; none. */
export type TlsPolicy = 'smtps' | 'required' | 'opportunistic' | 'none';

export interface Timeouts {
  connect: number;
  command: number;
  /** Waiting for the reply to the final dot, when the server does its filtering. */
  dataEnd: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = { connect: 30_000, command: 300_000, dataEnd: 600_000 };

/** mta_setup_dispatcher(): what the relay action sets on its TLS client config. */
export interface TlsClient {
  cert?: Buffer;
  key?: Buffer;
  ciphers?: string;
  minVersion?: SecureVersion;
  maxVersion?: SecureVersion;
}

export interface SessionParams {
  address: string;
  port: number;
  /** The MX or relay host name: SNI, and the name the certificate must carry when verifying. */
  hostname: string;
  tls: TlsPolicy;
  verify: boolean;
  /** PEM CA certificates to verify against instead of the system's. */
  ca?: string[];
  /** The relay action's `pki` (a client certificate), `ciphers` and `protocols` (spec.ts). */
  tlsClient?: TlsClient;
  helo: string;
  lmtp: boolean;
  auth?: { user: string; password: string };
  localAddress?: string;
  timeouts: Timeouts;
  clock: Clock;
}

export interface TxRecipient {
  rcpt: string;
  dsn: DsnParams;
}

export interface Transaction {
  sender: string;
  rcpts: TxRecipient[];
  smtputf8: boolean;
  ret?: 'FULL' | 'HDRS';
  envid?: string;
  body: MessageBody;
}

export class SmtpClientSession {
  caps: Capabilities = NO_CAPABILITIES;
  /** Messages sent (or tried) on this session, for `session-mail-max`. */
  messages = 0;
  /**
   * A MAIL was sent and its transaction has not ended (final reply to the dot, or RSET): the next
   * message starts with RSET. After a completed transaction the server is back at the start
   * (RFC 5321 §4.1.1.4), so it goes straight to MAIL, as mta_session.c goes from MTA_EOM to MTA_READY.
   */
  private inTransaction = false;
  verified = false;
  /**
   * Why this session runs in plaintext although TLS was to be tried (opportunistic): STARTTLS
   * was offered but refused, or the handshake broke and the connector reconnected in clear.
   */
  downgraded: string | null = null;

  /** 16 hex digits, as OpenSMTPD's session ids. */
  readonly id = randomBytes(8).toString('hex');

  private constructor(private readonly wire: Wire, readonly params: SessionParams) {}

  static async open(p: SessionParams): Promise<SmtpClientSession> {
    const tls = p.tls === 'smtps' ? tlsOptions(p) : undefined;
    const wire = await Wire.connect({ address: p.address, port: p.port, localAddress: p.localAddress, tls }, p.clock, p.timeouts.connect);
    const s = new SmtpClientSession(wire, p);
    try {
      await s.greet();
      return s;
    } catch (err) {
      wire.destroy();
      throw err;
    }
  }

  get localAddress(): string {
    return this.wire.localAddress;
  }

  get secure(): boolean {
    return this.wire.secure;
  }

  /** For the `tls` log line: protocol, cipher, and whether the certificate was verified. */
  get tlsInfo(): { protocol: string; cipher: string; verified: boolean } | null {
    const t = this.wire.tlsSocket;
    if (!t) return null;
    return { protocol: t.getProtocol() ?? '?', cipher: t.getCipher()?.name ?? '?', verified: t.authorized === true };
  }

  get usable(): boolean {
    return !this.wire.closed;
  }

  private async greet(): Promise<void> {
    const banner = await this.wire.read(this.params.timeouts.command);
    if (checkReply('greeting', banner) === 'negative') throw new MtaSessionError('greeting', `banner: ${replyText(banner)}`, fromReply(banner));
    await this.hello();
    if (this.params.tls === 'required' || this.params.tls === 'opportunistic') await this.maybeStartTls();
    if (this.params.auth) await this.authenticate(this.params.auth);
  }

  private async command(line: string, timeout = this.params.timeouts.command): Promise<Reply> {
    await this.wire.write(line + '\r\n');
    const r = await this.wire.read(timeout);
    if (this.wire.unsolicited) throw new MtaSessionError('io', 'remote host sent too much data');
    return r;
  }

  /** EHLO (LHLO for LMTP); a rejected EHLO falls back to HELO unless TLS or AUTH is needed. */
  private async hello(): Promise<void> {
    const verb = this.params.lmtp ? 'LHLO' : 'EHLO';
    const r = await this.command(`${verb} ${this.params.helo}`);
    if (checkReply('ehlo', r) === 'positive') { this.caps = parseCapabilities(r); return; }
    const needsEsmtp = this.params.auth !== undefined || this.params.tls === 'required' || this.params.lmtp;
    if (needsEsmtp || r.code === 421) throw new MtaSessionError('greeting', `${verb} rejected: ${replyText(r)}`, fromReply(r));
    const h = await this.command(`HELO ${this.params.helo}`);
    if (checkReply('helo', h) === 'negative') throw new MtaSessionError('greeting', `HELO rejected: ${replyText(h)}`, fromReply(h));
    this.caps = NO_CAPABILITIES;
  }

  private async maybeStartTls(): Promise<void> {
    const required = this.params.tls === 'required';
    if (!this.caps.starttls) {
      if (required) throw new MtaSessionError('tls', 'TLS required but STARTTLS not offered by remote host');
      return;
    }
    const r = await this.command('STARTTLS');
    if (checkReply('starttls', r) === 'negative') {
      if (required) throw new MtaSessionError('tls', `STARTTLS rejected: ${replyText(r)}`);
      this.downgraded = `STARTTLS rejected: ${replyText(r)}`;
      return; // opportunistic: carry on in plaintext
    }
    await this.wire.startTls(tlsOptions(this.params), this.params.timeouts.command);
    this.noteVerification();
    await this.hello();
  }

  private noteVerification(): void {
    this.verified = this.wire.tlsSocket?.authorized === true;
  }

  /** AUTH PLAIN, else LOGIN; never over plaintext, where the password would be readable. */
  private async authenticate(a: { user: string; password: string }): Promise<void> {
    if (!this.wire.secure) throw new MtaSessionError('auth', 'Refuse to AUTH over insecure channel');
    if (this.caps.auth.has('PLAIN')) {
      const token = Buffer.from(`\0${a.user}\0${a.password}`).toString('base64');
      return this.authDone(await this.command(`AUTH PLAIN ${token}`));
    }
    if (!this.caps.auth.has('LOGIN')) throw new MtaSessionError('auth', 'no supported AUTH mechanism offered');
    for (const prompt of ['AUTH LOGIN', Buffer.from(a.user).toString('base64')]) {
      const r = await this.command(prompt);
      if (checkReply('auth-challenge', r) === 'negative') return this.authDone(r);
    }
    return this.authDone(await this.command(Buffer.from(a.password).toString('base64')));
  }

  private authDone(r: Reply): void {
    if (checkReply('auth', r) === 'negative') throw new MtaSessionError('auth', `authentication failed: ${replyText(r)}`, fromReply(r));
  }

  /** One message: a result per recipient, in the order given. Throws only on I/O or protocol errors. */
  async send(tx: Transaction): Promise<DeliveryResult[]> {
    this.messages++;
    if (this.inTransaction) await this.reset();
    const size = tx.body.size;
    if (this.caps.size > 0 && size > this.caps.size) {
      return tx.rcpts.map(() => ({ result: 'permfail', enhanced: '5.3.4', detail: 'message too large for remote host' }));
    }
    const mail = mailCommand(tx, this.caps, size);
    if ('result' in mail) return tx.rcpts.map(() => mail);
    if (tx.smtputf8 && !this.caps.smtputf8 && await headersNeedUtf8(tx.body)) {
      const refused = utf8Refusal('headers');
      return tx.rcpts.map(() => refused);
    }
    return (await this.exchange(tx, mail.line)).map((r) => this.decidedRemotely(r));
  }

  /** MAIL, RCPTs, DATA: every result here is the remote's answer. */
  private async exchange(tx: Transaction, mail: string): Promise<DeliveryResult[]> {
    const rcpts = tx.rcpts.map((r) => rcptCommand(r, this.caps));
    this.inTransaction = true;
    const { replies: [mailReply, ...rcptReplies], data } = await this.envelopeCommands(mail, rcpts);
    if (checkReply('mail', mailReply!) === 'negative') {
      await this.endEmptyData(data);
      await this.reset();
      return tx.rcpts.map(() => replyResult(mailReply!));
    }
    const results = rcptReplies.map((r) => stepResult('rcpt', r));
    const accepted = results.flatMap((r, i) => (r.result === 'ok' ? [i] : []));
    if (accepted.length === 0) {
      await this.endEmptyData(data);
      await this.reset();
      return results;
    }
    const finals = await this.data(tx.body, accepted.length, data);
    accepted.forEach((idx, k) => (results[idx] = finals[k]!));
    return results;
  }

  /**
   * A result the remote's reply decided names the remote (Remote-MTA). An SMTP next hop that
   * accepted relays rather than delivers, and took NOTIFY over only if it offered DSN; LMTP
   * delivers.
   */
  private decidedRemotely(r: DeliveryResult): DeliveryResult {
    const remoteMta = this.params.hostname;
    if (r.result !== 'ok' || this.params.lmtp) return { ...r, remoteMta };
    return { ...r, remoteMta, relayed: { dsn: this.caps.dsn } };
  }

  /**
   * MAIL, the RCPTs and DATA in one write when PIPELINING is offered (DATA may end a group, RFC
   * 2920 3.1, and Postfix's smtp client sends it so: one round trip less per message), else one
   * at a time. LMTP keeps DATA apart: with no recipient accepted, a server that took DATA anyway
   * would owe no reply to the final dot. `data`: the reply to a pipelined DATA.
   */
  private async envelopeCommands(mail: string, rcpts: string[]): Promise<{ replies: Reply[]; data?: Reply }> {
    if (!this.caps.pipelining) {
      const m = await this.command(mail);
      if (m.code !== 250) return { replies: [m] };
      const replies = [m];
      for (const r of rcpts) replies.push(await this.command(r));
      return { replies };
    }
    const withData = !this.params.lmtp;
    await this.wire.write([mail, ...rcpts, ...(withData ? ['DATA'] : [])].map((l) => l + '\r\n').join(''));
    const replies: Reply[] = [];
    for (let i = 0; i <= rcpts.length; i++) replies.push(await this.wire.read(this.params.timeouts.command));
    const data = withData ? await this.wire.read(this.params.timeouts.command) : undefined;
    if (replies[0]!.code !== 250) replies.length = 1;
    return data ? { replies, data } : { replies };
  }

  /**
   * A pipelined DATA the server went ahead with although MAIL or every RCPT failed: an empty
   * body ends it, as Postfix's smtp client does, and its reply is read and dropped.
   */
  private async endEmptyData(data: Reply | undefined): Promise<void> {
    if (!data || checkReply('data', data) === 'negative') return;
    await this.wire.write('.\r\n', this.params.timeouts.command);
    await this.wire.read(this.params.timeouts.dataEnd);
  }

  /** DATA (unless it went pipelined: `go`), the body streamed with dot-stuffing, then one reply (SMTP) or one per recipient (LMTP). */
  private async data(body: MessageBody, accepted: number, go?: Reply): Promise<DeliveryResult[]> {
    go ??= await this.command('DATA');
    // no body without a 354 (RFC 5321 §3.3): a 250 here is no delivery
    if (checkReply('data', go) === 'negative') return Array.from({ length: accepted }, () => replyResult(go));
    const stuffer = new DotStuffer();
    // each chunk waits for the next, so the last one and the final dot leave in one write
    let held: Buffer | null = null;
    for await (const chunk of body.open()) {
      if (held) await this.wire.write(held, this.params.timeouts.command);
      held = stuffer.push(chunk as Buffer);
    }
    const end = stuffer.end();
    await this.wire.write(held ? Buffer.concat([held, end]) : end, this.params.timeouts.command);
    const n = this.params.lmtp ? accepted : 1;
    const finals: DeliveryResult[] = [];
    for (let i = 0; i < n; i++) finals.push(stepResult('data-end', await this.wire.read(this.params.timeouts.dataEnd)));
    this.inTransaction = false;
    return Array.from({ length: accepted }, (_, i) => finals[this.params.lmtp ? i : 0]!);
  }

  private async reset(): Promise<void> {
    const r = await this.command('RSET');
    if (checkReply('rset', r) === 'negative') throw new MtaSessionError('transaction', `RSET rejected: ${replyText(r)}`);
    this.inTransaction = false;
  }

  /** QUIT and close; errors here do not matter any more. */
  async quit(): Promise<void> {
    try {
      if (this.usable) await this.command('QUIT', 5000);
    } catch {
      // the remote may close first; the session is over either way
    }
    this.wire.end();
  }

  destroy(): void {
    this.wire.destroy();
  }
}

function tlsOptions(p: SessionParams): ConnectionOptions {
  const isName = !/^[\d.]+$|:/.test(p.hostname);
  return {
    // the identity check uses `host` when no servername (SNI cannot carry an IP literal)
    host: p.hostname,
    ...(isName ? { servername: p.hostname } : {}),
    rejectUnauthorized: p.verify,
    ...(p.ca ? { ca: p.ca } : {}),
    ...p.tlsClient,
  };
}

/** A recipient's result from a reply its step allows; a reply it does not allow throws. */
function stepResult(step: 'rcpt' | 'data-end', r: Reply): DeliveryResult {
  checkReply(step, r);
  return replyResult(r);
}

function fromReply(r: Reply): { permanent: boolean; enhanced?: string } {
  const permanent = r.code >= 500;
  return r.enhanced ? { permanent, enhanced: r.enhanced } : { permanent };
}
