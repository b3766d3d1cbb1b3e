/**
 * Strict parser for the replies of a remote SMTP/LMTP server: bytes in, whole replies or one
 * protocol error out, with no socket, so that hostile servers can be tested line by line.
 */

/** A remote reply as a value: the three-digit code, its enhanced code if any, and its lines. */
export interface Reply {
  code: number;
  /** `x.y.z` from the first line, only when its class matches the code's first digit. */
  enhanced?: string;
  /** The text of every line (enhanced code stripped from each), in order. */
  lines: string[];
}

export type ReplyEvent = { kind: 'reply'; reply: Reply } | { kind: 'error'; reason: string };

/** RFC 5321 allows 512 octets per reply line; real servers overshoot a little, so allow twice that. */
export const MAX_LINE = 1024;
/** A long EHLO answer is a few dozen lines; more than this is a server trying to exhaust us. */
export const MAX_LINES = 64;

const LINE = /^([2-5][0-9][0-9])(?:([ -])(.*))?$/s;
const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})(?: +|$)/;

/** Split a reply line's text into its enhanced code and the rest. */
function splitEnhanced(code: number, text: string): { enhanced?: string; text: string } {
  const m = ENHANCED.exec(text);
  if (!m || Number(m[1]) !== Math.floor(code / 100)) return { text };
  return { enhanced: `${m[1]}.${m[2]}.${m[3]}`, text: text.slice(m[0].length) };
}

/** Only printable text and tabs may appear in a reply line: anything else is a forgery attempt. */
function badChars(s: string): boolean {
  return /[\x00-\x08\x0a-\x1f\x7f]/.test(s);
}

/**
 * Feed it chunks; it returns the replies they complete. After the first error it stays broken
 * (the session must drop the connection: the rest of the stream cannot be trusted).
 */
export class ReplyParser {
  private buf = '';
  private current: { code: number; raw: string[] } | null = null;
  private failed: string | null = null;

  get error(): string | null {
    return this.failed;
  }

  /** True when part of a reply (a line or continuation lines) is waiting for its end. */
  get partial(): boolean {
    return this.buf.length > 0 || this.current !== null;
  }

  feed(chunk: Buffer | string): ReplyEvent[] {
    if (this.failed) return [];
    // octets held as latin1 (one char per octet, so limits count octets); each line is UTF-8
    this.buf += typeof chunk === 'string' ? Buffer.from(chunk, 'utf8').toString('latin1') : chunk.toString('latin1');
    const out: ReplyEvent[] = [];
    for (;;) {
      const nl = this.buf.indexOf('\n');
      if (nl < 0) break;
      const octets = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      if (octets.length > MAX_LINE) return [...out, this.fail('reply line too long')];
      const line = utf8Line(octets);
      const ev = this.line(line);
      if (ev) out.push(ev);
      if (this.failed) return out;
    }
    if (this.buf.length > MAX_LINE) out.push(this.fail('reply line too long'));
    return out;
  }

  private fail(reason: string): ReplyEvent {
    this.failed = reason;
    this.buf = '';
    this.current = null;
    return { kind: 'error', reason };
  }

  private line(line: string): ReplyEvent | null {
    if (line.length > MAX_LINE) return this.fail('reply line too long');
    if (badChars(line)) return this.fail('control character in reply');
    const m = LINE.exec(line);
    if (!m) return this.fail('malformed reply line');
    const code = Number(m[1]);
    if (this.current && this.current.code !== code) return this.fail('reply code changed inside a multi-line reply');
    const cur = (this.current ??= { code, raw: [] });
    cur.raw.push(m[3] ?? '');
    if (cur.raw.length > MAX_LINES) return this.fail('too many lines in reply');
    if (m[2] === '-') return null;
    this.current = null;
    return { kind: 'reply', reply: buildReply(code, cur.raw) };
  }
}

/**
 * A reply line's text: UTF-8 (RFC 6531 §3.7.4.2 lets an SMTPUTF8 server answer in UTF-8), so a
 * remote's words reach logs and bounces as written; octets that are not UTF-8 become U+FFFD.
 */
function utf8Line(octets: string): string {
  return Buffer.from(octets, 'latin1').toString('utf8');
}

function buildReply(code: number, raw: string[]): Reply {
  const first = splitEnhanced(code, raw[0]!);
  const lines = raw.map((t, i) => (i === 0 ? first.text : first.enhanced ? splitEnhanced(code, t).text : t));
  return first.enhanced ? { code, enhanced: first.enhanced, lines } : { code, lines };
}

/** Parse a whole buffer: every complete reply, then the error if one was met. */
export function parseReplies(input: string): { replies: Reply[]; error?: string; rest: boolean } {
  const p = new ReplyParser();
  const replies: Reply[] = [];
  let error: string | undefined;
  for (const ev of p.feed(input)) {
    if (ev.kind === 'reply') replies.push(ev.reply);
    else error = ev.reason;
  }
  return error === undefined ? { replies, rest: p.partial } : { replies, error, rest: false };
}

/** `250 2.0.0 text` as one line for logs and delivery results (lines joined by spaces). */
export function replyText(r: Reply): string {
  const text = r.lines.join(' ').replace(/\s+/g, ' ').trim();
  return [String(r.code), r.enhanced, text].filter((x) => x).join(' ');
}

/** Encode a reply to the wire, for tests and the sink server. */
export function formatReply(r: Reply): string {
  return r.lines
    .map((t, i) => `${r.code}${i === r.lines.length - 1 ? ' ' : '-'}${r.enhanced ? r.enhanced + ' ' : ''}${t}`.replace(/ $/, ''))
    .map((l) => l + '\r\n')
    .join('');
}
