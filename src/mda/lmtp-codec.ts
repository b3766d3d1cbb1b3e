/**
 * The LMTP wire format (RFC 2033 on RFC 5321's syntax), as pure functions with no I/O: the
 * destination syntax of `action lmtp`, a strict parser for (multi-line) replies, and dot-stuffing.
 */

export type LmtpDestination = { kind: 'unix'; path: string } | { kind: 'inet'; host: string; port: number };

/** OpenSMTPD's mail.lmtp default when no port is given. */
export const DEFAULT_LMTP_PORT = 25;

/** `/path/to/socket`, `host`, `host:port`, `[v6addr]` or `[v6addr]:port` (also `[IPv6:...]`). */
export function parseDestination(dest: string): LmtpDestination | null {
  if (dest.startsWith('/')) return { kind: 'unix', path: dest };
  let host = dest;
  let port: string | undefined;
  if (dest.startsWith('[')) {
    const close = dest.indexOf(']');
    if (close === -1) return null;
    host = dest.slice(1, close).replace(/^ipv6:/i, '');
    const tail = dest.slice(close + 1);
    if (tail.startsWith(':')) port = tail.slice(1);
    else if (tail !== '') return null;
  } else {
    const colon = dest.indexOf(':');
    if (colon !== -1) {
      host = dest.slice(0, colon);
      port = dest.slice(colon + 1);
    }
  }
  if (host === '' || /[\s/]/.test(host)) return null;
  if (port === undefined) return { kind: 'inet', host, port: DEFAULT_LMTP_PORT };
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) return null;
  return { kind: 'inet', host, port: Number(port) };
}

export interface LmtpReply {
  code: number;
  /** RFC 3463 code taken from the first line, when the server gave one. */
  enhanced?: string;
  lines: string[];
}

/** Limits that keep a hostile server from making us buffer without end. */
export const MAX_REPLY_LINE = 4096;
export const MAX_REPLY_LINES = 100;

const LINE_RE = /^([2-5][0-9][0-9])([ -])(.*)$/s;
const ENHANCED_RE = /^([245]\.\d{1,3}\.\d{1,3})(?: |$)/;

export class LmtpProtocolError extends Error {
  override name = 'LmtpProtocolError';
}

/**
 * Feed bytes, get whole replies. Every line must be `DDD-text` or `DDD text` with one code for
 * the whole reply; anything else is a protocol error (the session is then abandoned).
 */
export class ReplyParser {
  private buf = '';
  private pending: string[] = [];
  private code = 0;

  push(chunk: Buffer | string): LmtpReply[] {
    // octets held as latin1 (limits count octets); each line's text is UTF-8 (RFC 6531 replies)
    this.buf += typeof chunk === 'string' ? Buffer.from(chunk, 'utf8').toString('latin1') : chunk.toString('latin1');
    const out: LmtpReply[] = [];
    for (let nl = this.buf.indexOf('\n'); nl !== -1; nl = this.buf.indexOf('\n')) {
      let octets = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (octets.endsWith('\r')) octets = octets.slice(0, -1);
      if (octets.length > MAX_REPLY_LINE) throw new LmtpProtocolError('reply line too long');
      const line = Buffer.from(octets, 'latin1').toString('utf8');
      const reply = this.line(line);
      if (reply) out.push(reply);
    }
    if (this.buf.length > MAX_REPLY_LINE) throw new LmtpProtocolError('reply line too long');
    return out;
  }

  private line(line: string): LmtpReply | null {
    if (line.length > MAX_REPLY_LINE) throw new LmtpProtocolError('reply line too long');
    const m = LINE_RE.exec(line);
    if (!m) throw new LmtpProtocolError(`invalid reply line: ${line.slice(0, 80)}`);
    const code = Number(m[1]);
    if (this.pending.length && code !== this.code) throw new LmtpProtocolError('reply code changed inside a multi-line reply');
    this.code = code;
    this.pending.push(m[3]!);
    if (this.pending.length > MAX_REPLY_LINES) throw new LmtpProtocolError('too many reply lines');
    if (m[2] === '-') return null;
    const lines = this.pending;
    this.pending = [];
    const e = ENHANCED_RE.exec(lines[0]!);
    return e ? { code, enhanced: e[1]!, lines } : { code, lines };
  }
}

/** The reply as one line for logs and bounce details: `550 5.1.1 No such user`. */
export function replyText(r: LmtpReply): string {
  return `${r.code} ${r.lines.join(' ').replace(/[\x00-\x1f\x7f]/g, ' ')}`.slice(0, 512);
}

const DOT = 0x2e;
const DOT_BUF = Buffer.from('.');
export const CRLF = Buffer.from('\r\n');
export const END_OF_DATA = Buffer.from('.\r\n');

/** One message line as it goes on the wire inside DATA (RFC 5321 4.5.2). */
export function stuffLine(line: Buffer): Buffer[] {
  return line.length && line[0] === DOT ? [DOT_BUF, line, CRLF] : [line, CRLF];
}

/** Undo dot-stuffing of DATA lines (the server side; used by tests and tools). */
export function unstuffLine(line: string): string {
  return line.startsWith('.') ? line.slice(1) : line;
}

/** An address inside `<...>`: CR, LF and `>` cannot be sent there, so such a value is refused. */
export function isSendableAddress(addr: string): boolean {
  return !/[\r\n<>\x00]/.test(addr) && addr.length <= 1024;
}
