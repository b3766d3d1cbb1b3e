/**
 * The LMTP client of `action lmtp DEST [rcpt-to]` (mail.lmtp): one transaction per delivery to
 * a TCP host:port or a UNIX socket, LHLO/MAIL/RCPT/DATA, and after the final dot one reply per
 * accepted recipient (RFC 2033 4.2), each turned into that recipient's own result.
 */
import { connect, type Socket } from 'node:net';
import type { DeliveryResult } from '../bus/messages.js';
import {
  END_OF_DATA, isSendableAddress, parseDestination, ReplyParser, replyText, stuffLine, type LmtpReply,
} from './lmtp-codec.js';
import { ChunkBuffer } from './message.js';
import { fromReply, permfail, tempfail } from './results.js';

export interface LmtpJob {
  destination: string;
  lhlo: string;
  /** MAIL FROM address, '' for the null sender. */
  mailFrom: string;
  rcpts: string[];
  /** The message came with SMTPUTF8: passed on when the server offers it (RFC 6531). */
  smtputf8?: boolean;
  /** Longest wait for any one reply or for the connection. */
  timeoutMs: number;
}

const nonAscii = (s: string) => /[^\x00-\x7f]/.test(s);

/** One result per recipient, in the order of `job.rcpts`. */
export async function deliverLmtp(job: LmtpJob, lines: AsyncIterable<Buffer>): Promise<DeliveryResult[]> {
  const all = (r: DeliveryResult): DeliveryResult[] => job.rcpts.map(() => r);
  const dest = parseDestination(job.destination);
  if (!dest) return all(permfail(`invalid LMTP destination: ${job.destination}`));
  const bad = [job.mailFrom, ...job.rcpts, job.lhlo].find((a) => !isSendableAddress(a));
  if (bad !== undefined) return all(permfail('address cannot be sent over LMTP'));
  let conn: Conn;
  try {
    conn = await Conn.open(dest.kind === 'unix' ? { path: dest.path } : { host: dest.host, port: dest.port }, job.timeoutMs);
  } catch (err) {
    return all(tempfail(`LMTP connect to ${job.destination}: ${(err as Error).message}`));
  }
  try {
    return await transaction(conn, job, lines);
  } catch (err) {
    return all(tempfail(`LMTP ${job.destination}: ${(err as Error).message}`));
  } finally {
    conn.close();
  }
}

async function transaction(conn: Conn, job: LmtpJob, lines: AsyncIterable<Buffer>): Promise<DeliveryResult[]> {
  const all = (r: DeliveryResult): DeliveryResult[] => job.rcpts.map(() => r);
  const greeting = await conn.reply();
  if (Math.floor(greeting.code / 100) !== 2) return all(failure(greeting));
  await conn.send(`LHLO ${job.lhlo}`);
  const lhlo = await conn.reply();
  if (Math.floor(lhlo.code / 100) !== 2) return all(failure(lhlo));
  // SMTPUTF8 goes on when offered; a server without it never gets a UTF-8 address (RFC 6531 §3.2)
  const utf8Offered = lhlo.lines.slice(1).some((l) => /^SMTPUTF8$/i.test(l.trim()));
  if (!utf8Offered && [job.mailFrom, ...job.rcpts].some(nonAscii)) {
    await conn.quit();
    return all({ result: 'permfail', enhanced: '5.6.7', detail: 'Non-ASCII addresses not permitted for that sender/recipient: LMTP server does not support SMTPUTF8' });
  }
  await conn.send(`MAIL FROM:<${job.mailFrom}>${job.smtputf8 && utf8Offered ? ' SMTPUTF8' : ''}`);
  const mail = await conn.reply();
  if (Math.floor(mail.code / 100) !== 2) return all(failure(mail));
  const results: (DeliveryResult | null)[] = [];
  for (const rcpt of job.rcpts) {
    await conn.send(`RCPT TO:<${rcpt}>`);
    const r = await conn.reply();
    results.push(Math.floor(r.code / 100) === 2 ? null : failure(r));
  }
  if (results.every((r) => r !== null)) {
    await conn.quit();
    return results as DeliveryResult[];
  }
  await conn.send('DATA');
  const go = await conn.reply();
  if (Math.floor(go.code / 100) !== 3) return all(failure(go));
  await sendBody(conn, lines);
  // one reply per accepted recipient, in RCPT order
  const out: DeliveryResult[] = [];
  for (let i = 0; i < results.length; i++) {
    if (results[i]) out.push(results[i]!);
    else {
      const r = await conn.reply();
      out.push(fromReply(r.code, r.enhanced, replyText(r)));
    }
  }
  await conn.quit();
  return out;
}

/** A reply that is not the one the step wanted: 5xx bounces (as mail.lmtp since 7.7), else retry. */
function failure(r: LmtpReply): DeliveryResult {
  if (r.code >= 500) return fromReply(r.code, r.enhanced, replyText(r));
  return fromReply(r.code >= 400 ? r.code : 451, r.code >= 400 ? r.enhanced : undefined, replyText(r));
}

async function sendBody(conn: Conn, lines: AsyncIterable<Buffer>): Promise<void> {
  const out = new ChunkBuffer((chunk) => conn.write(chunk));
  for await (const line of lines) await out.push(...stuffLine(line));
  await out.push(END_OF_DATA);
  await out.flush();
}

/** A socket with a reply queue and timeouts: every wait ends, by a reply, an error or the clock. */
class Conn {
  private readonly parser = new ReplyParser();
  private readonly replies: LmtpReply[] = [];
  private waiter: { resolve: (r: LmtpReply) => void; reject: (e: Error) => void } | null = null;
  private error: Error | null = null;

  private constructor(private readonly socket: Socket, private readonly timeoutMs: number) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed by server')));
  }

  static open(target: { path: string } | { host: string; port: number }, timeoutMs: number): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const socket = 'path' in target ? connect({ path: target.path }) : connect({ host: target.host, port: target.port });
      const timer = setTimeout(() => { socket.destroy(); reject(new Error('connect timeout')); }, timeoutMs);
      socket.once('error', (err) => { clearTimeout(timer); reject(err); });
      socket.once('connect', () => { clearTimeout(timer); socket.removeAllListeners('error'); resolve(new Conn(socket, timeoutMs)); });
    });
  }

  private onData(chunk: Buffer): void {
    try {
      for (const r of this.parser.push(chunk)) this.replies.push(r);
    } catch (err) {
      this.fail(err as Error);
      this.socket.destroy();
      return;
    }
    this.wake();
  }

  private fail(err: Error): void {
    this.error ??= err;
    this.wake();
  }

  private wake(): void {
    if (!this.waiter) return;
    const w = this.waiter;
    const r = this.replies.shift();
    if (r) { this.waiter = null; w.resolve(r); }
    else if (this.error) { this.waiter = null; w.reject(this.error); }
  }

  reply(timeoutMs = this.timeoutMs): Promise<LmtpReply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.waiter = null; reject(new Error('timeout waiting for reply')); }, timeoutMs);
      this.waiter = {
        resolve: (r) => { clearTimeout(timer); resolve(r); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
      this.wake();
    });
  }

  send(line: string): Promise<void> {
    return this.write(Buffer.from(line + '\r\n', 'utf8'));
  }

  /** Write with backpressure, bounded by the timeout so a server that stops reading cannot hang us. */
  write(chunk: Buffer): Promise<void> {
    if (this.error) return Promise.reject(this.error);
    if (this.socket.write(chunk)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (err?: Error): void => {
        clearTimeout(timer);
        this.socket.off('drain', onDrain).off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = (): void => done();
      const onClose = (): void => done(this.error ?? new Error('connection closed'));
      const timer = setTimeout(() => done(new Error('timeout writing to server')), this.timeoutMs);
      this.socket.on('drain', onDrain).on('close', onClose);
    });
  }

  /** QUIT politely but do not wait long for the 221: the outcome is already known. */
  async quit(): Promise<void> {
    await this.send('QUIT').catch(() => undefined);
    await this.reply(Math.min(this.timeoutMs, 2000)).catch(() => undefined);
  }

  close(): void {
    this.socket.destroy();
  }
}
