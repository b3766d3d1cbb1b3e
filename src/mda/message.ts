/**
 * The message as local delivery sees it: a stream of lines (bytes, no line ending), the
 * Return-Path/Delivered-To lines mda.c prepends, and the header checks made before and while
 * delivering (a Delivered-To loop, an X-Spam verdict).
 */
import type { MessageBody } from '../queue/body-ref.js';

/** Split a byte stream on LF, dropping one CR before it: queue files and pipes may use either. */
export async function* splitLines(source: AsyncIterable<Buffer | string>): AsyncGenerator<Buffer> {
  let rest: Buffer = Buffer.alloc(0);
  for await (const chunk of source) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
    const data = rest.length ? Buffer.concat([rest, buf]) : buf;
    let start = 0;
    for (let nl = data.indexOf(0x0a, start); nl !== -1; nl = data.indexOf(0x0a, start)) {
      yield chopCr(data.subarray(start, nl));
      start = nl + 1;
    }
    rest = Buffer.from(data.subarray(start));
  }
  // a last line without a newline is still part of the message
  if (rest.length) yield chopCr(rest);
}

function chopCr(line: Buffer): Buffer {
  return line.length && line[line.length - 1] === 0x0d ? line.subarray(0, line.length - 1) : line;
}

export function bodyLines(body: MessageBody): AsyncGenerator<Buffer> {
  return splitLines(body.open());
}

/** The lines OpenSMTPD writes before the message: Return-Path only for a non-null sender. */
export function deliveryHeaders(sender: string, deliveredTo: string): Buffer[] {
  const lines: string[] = [];
  if (sender !== '') lines.push(`Return-Path: <${sender}>`);
  lines.push(`Delivered-To: ${deliveredTo}`);
  return lines.map((l) => Buffer.from(l, 'utf8'));
}

export async function* withPrefix(prefix: Buffer[], lines: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield* prefix;
  yield* lines;
}

/** `X-Spam: yes` or `X-Spam-Flag: yes` as a whole header line: what mail.maildir -j looks for. */
export function isSpamLine(line: Buffer): boolean {
  if (line.length !== 11 && line.length !== 16) return false;
  const lower = line.toString('latin1').toLowerCase();
  return lower === 'x-spam: yes' || lower === 'x-spam-flag: yes';
}

/** Header lines beyond this are not searched: a hostile header section cannot make us read forever. */
const MAX_HEADER_LINES = 10_000;

/**
 * Whether a `Delivered-To:` header in the header section (up to the first blank or non-header
 * line) already names the final recipient: then delivering again would loop (mda_check_loop).
 */
export async function hasDeliveredTo(lines: AsyncIterable<Buffer>, dest: string): Promise<boolean> {
  const want = 'delivered-to: ' + dest.toLowerCase();
  let n = 0;
  for await (const raw of lines) {
    // UTF-8, as the address it is compared with (an SMTPUTF8 recipient)
    const line = raw.toString('utf8');
    if (line === '' || ++n > MAX_HEADER_LINES) break;
    if (!line.includes(':') && !/^[ \t]/.test(line)) break;
    if (line.toLowerCase() === want) return true;
  }
  return false;
}

/** Collects small writes into large ones, so a message of many short lines costs few syscalls. */
export class ChunkBuffer {
  private parts: Buffer[] = [];
  private size = 0;
  constructor(
    private readonly flushTo: (chunk: Buffer) => Promise<void>,
    private readonly limit = 64 * 1024,
  ) {}

  async push(...bufs: Buffer[]): Promise<void> {
    for (const b of bufs) {
      this.parts.push(b);
      this.size += b.length;
    }
    if (this.size >= this.limit) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.size === 0) return;
    const chunk = Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    await this.flushTo(chunk);
  }
}

export const LF = Buffer.from('\n');
