/**
 * The session's framing codec: bytes in, ordered events out, no sockets. Command lines (512
 * octets at most, never buffered beyond that), DATA bodies (dot-unstuffed, ending only at
 * <CR><LF>.<CR><LF>) and BDAT chunks (exactly the octets announced). After a DATA or STARTTLS
 * line it stops framing until the session says how the next bytes are to be read: after DATA
 * they may be a body or more commands, after STARTTLS they must be thrown away (CVE-2011-0411).
 */

export type FrameEvent =
  /** `bareLf`: the line ended with a LF alone, which RFC 5321 §2.3.8 does not allow */
  | { kind: 'line'; line: string; bareLf?: true }
  | { kind: 'too-long' }
  /** A line with no LF in sight after RUNAWAY_LINE octets: the client is not speaking SMTP. */
  | { kind: 'runaway' }
  | { kind: 'data'; data: Buffer }
  | { kind: 'data-end'; size: number; bareLf: boolean; bareCr: boolean; longLine: boolean }
  | { kind: 'chunk'; data: Buffer }
  | { kind: 'chunk-end' };

/** RFC 5321 §4.5.3.1.4: 512 octets for a command line, CRLF included. */
export const MAX_COMMAND_LINE = 512;
/** RFC 5321 §4.5.3.1.6: 1000 octets for a text line, CRLF included. */
export const MAX_TEXT_LINE = 1000;
/**
 * An over-long line is discarded until its LF, and answered then; past this many octets without
 * one the session gives up on the client (OpenSMTPD's SMTP_LINE_MAX in smtp_io).
 */
export const RUNAWAY_LINE = 65535;
/** `BDAT size [LAST]`: the size bounded so it stays an exact integer. */
export const BDAT_COMMAND = /^BDAT +(\d{1,15})(?: +(LAST))? *$/i;

/**
 * A command line's text. Commands are UTF-8 (RFC 6531 §3.3: SMTPUTF8 addresses travel as UTF-8
 * octets); octets that are not UTF-8 become U+FFFD, which no address accepts. Decoding as latin1
 * instead would make every later step (lookups, Return-Path, relaying) see mojibake.
 */
function commandText(octets: Buffer): string {
  return octets.toString('utf8');
}

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

export type Mode = 'command' | 'held' | 'data' | 'chunk';

export class LineReader {
  private buffer: Buffer = Buffer.alloc(0);
  private current: Mode = 'command';
  /** Octets of an over-long command line dropped so far; -1 while no line is being dropped. */
  private dropped = -1;
  /** A line ran past RUNAWAY_LINE: the client is not speaking SMTP and nothing more is read. */
  private gaveUp = false;
  // data mode
  private atLineStart = true;
  private lineLength = 0;
  private size = 0;
  private flags = { bareLf: false, bareCr: false, longLine: false };
  // chunk mode
  private chunkLeft = 0;

  constructor(private readonly max = MAX_COMMAND_LINE) {}

  /** Feed bytes; returns the events they complete. */
  push(chunk: Buffer): FrameEvent[] {
    if (this.gaveUp) return [];
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    return this.run();
  }

  /** After a DATA line the session accepted (354 sent): what follows is the body. */
  startData(): FrameEvent[] {
    this.current = 'data';
    this.atLineStart = true;
    this.lineLength = 0;
    this.size = 0;
    this.flags = { bareLf: false, bareCr: false, longLine: false };
    return this.run();
  }

  /** After a held line was refused (DATA) or handled: go on reading commands. */
  resume(): FrameEvent[] {
    this.current = 'command';
    return this.run();
  }

  /** Framing stopped after DATA or STARTTLS, waiting for the session. */
  get held(): boolean {
    return this.current === 'held';
  }

  /** How the next bytes will be read: command lines, held, a DATA body or a BDAT chunk. */
  get mode(): Mode {
    return this.current;
  }

  /** Part of a command line is in: its LF has yet to come. */
  get midLine(): boolean {
    return this.current === 'command' && (this.buffer.length > 0 || this.dropped >= 0);
  }

  /** Bytes received and not yet framed. */
  pending(): number {
    return this.buffer.length;
  }

  /** Drop whatever was received but not yet framed (STARTTLS). */
  discard(): void {
    this.buffer = Buffer.alloc(0);
    this.dropped = -1;
  }

  private run(): FrameEvent[] {
    const events: FrameEvent[] = [];
    for (;;) {
      const before = this.buffer.length;
      const mode = this.current;
      if (mode === 'held') break;
      if (mode === 'command') this.commands(events);
      else if (mode === 'data') this.body(events);
      else this.chunk(events);
      if (this.current === mode && this.buffer.length === before) break;
    }
    return events;
  }

  private commands(events: FrameEvent[]): void {
    let data = this.buffer;
    while (this.current === 'command') {
      const lf = data.indexOf(LF);
      if (lf < 0) break;
      const dropping = this.dropped >= 0;
      const length = Math.max(0, this.dropped) + lf;
      this.dropped = -1;
      if (length > RUNAWAY_LINE) return this.giveUp(events);
      if (dropping || lf + 1 > this.max) {
        events.push({ kind: 'too-long' });
      } else if (lf === 0 || data[lf - 1] !== CR) {
        // never acted on: a bare LF is refused as a bare CR is, so it cannot start DATA or BDAT
        events.push({ kind: 'line', line: commandText(data.subarray(0, lf)), bareLf: true });
      } else {
        const line = commandText(data.subarray(0, lf - 1));
        events.push({ kind: 'line', line });
        this.afterLine(line);
      }
      data = data.subarray(lf + 1);
    }
    if (this.current === 'command' && (this.dropped >= 0 || data.length > this.max)) {
      this.dropped = Math.max(0, this.dropped) + data.length;
      if (this.dropped > RUNAWAY_LINE) return this.giveUp(events);
      data = Buffer.alloc(0);
    }
    this.buffer = Buffer.from(data);
  }

  /** A runaway line: the session ends, and nothing after it is framed or kept. */
  private giveUp(events: FrameEvent[]): void {
    events.push({ kind: 'runaway' });
    this.gaveUp = true;
    this.buffer = Buffer.alloc(0);
    this.current = 'held';
  }

  private afterLine(line: string): void {
    const verb = line.slice(0, 9).toUpperCase();
    if (verb === 'DATA' || verb.startsWith('DATA ') || verb === 'STARTTLS' || verb.startsWith('STARTTLS ')) {
      this.current = 'held';
      return;
    }
    const bdat = BDAT_COMMAND.exec(line);
    if (bdat) {
      this.chunkLeft = Number(bdat[1]);
      this.current = 'chunk';
    }
  }

  private chunk(events: FrameEvent[]): void {
    const n = Math.min(this.chunkLeft, this.buffer.length);
    if (n > 0) {
      events.push({ kind: 'chunk', data: Buffer.from(this.buffer.subarray(0, n)) });
      this.buffer = this.buffer.subarray(n);
      this.chunkLeft -= n;
    }
    if (this.chunkLeft === 0) {
      events.push({ kind: 'chunk-end' });
      this.current = 'command';
    }
  }

  /**
   * The body, line by line without holding lines: bytes go out as they come except the at most
   * three at the end that could still turn out to be a stuffed dot, the terminator or a CRLF.
   */
  private body(events: FrameEvent[]): void {
    const b = this.buffer;
    let i = 0;
    let from = 0;
    let hold = b.length;
    const emit = (end: number) => {
      if (end > from) {
        events.push({ kind: 'data', data: Buffer.from(b.subarray(from, end)) });
        this.size += end - from;
      }
    };
    while (i < b.length) {
      if (this.atLineStart) {
        this.atLineStart = false;
        if (b[i] === DOT) {
          if (i + 1 >= b.length || (b[i + 1] === CR && i + 2 >= b.length)) { hold = i; this.atLineStart = true; break; }
          if (b[i + 1] === CR && b[i + 2] === LF) {
            emit(i);
            events.push({ kind: 'data-end', size: this.size, ...this.flags });
            this.buffer = b.subarray(i + 3);
            this.current = 'command';
            return;
          }
          // a stuffed dot: the client doubled it, the body has one
          emit(i);
          from = i + 1;
          i += 1;
          this.lineLength = 1;
          continue;
        }
      }
      const c = b[i];
      if (c === CR) {
        if (i + 1 >= b.length) { hold = i; break; }
        if (b[i + 1] === LF) {
          if (this.lineLength + 2 > MAX_TEXT_LINE) this.flags.longLine = true;
          i += 2;
          this.lineLength = 0;
          this.atLineStart = true;
          continue;
        }
        this.flags.bareCr = true;
      } else if (c === LF) {
        // a bare LF never starts a line here: `\n.\n` cannot end the body (SMTP smuggling)
        this.flags.bareLf = true;
      }
      i++;
      this.lineLength++;
    }
    emit(Math.min(hold, b.length));
    this.buffer = Buffer.from(b.subarray(Math.min(hold, b.length)));
  }
}
