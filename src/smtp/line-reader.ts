/**
 * Command-line framing for SMTP sessions: bytes in, complete lines out. A line longer than the
 * limit is never buffered without bound: its bytes are dropped up to the next LF and a single
 * `too-long` event stands for it, so the session can answer 500 and carry on.
 */

export type LineEvent = { kind: 'line'; line: string } | { kind: 'too-long' };

/** RFC 5321 §4.5.3.1.4: 512 octets for a command line, CRLF included. */
export const MAX_COMMAND_LINE = 512;

export class LineReader {
  private buffer: Buffer = Buffer.alloc(0);
  private discarding = false;

  constructor(private readonly max = MAX_COMMAND_LINE) {}

  /** Feed bytes; returns the events for every line completed by them. */
  push(chunk: Buffer): LineEvent[] {
    const events: LineEvent[] = [];
    let data = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    for (;;) {
      const lf = data.indexOf(0x0a);
      if (lf < 0) break;
      if (this.discarding) {
        this.discarding = false;
        events.push({ kind: 'too-long' });
      } else if (lf + 1 > this.max) {
        events.push({ kind: 'too-long' });
      } else {
        // a bare LF ends a command line too (as most servers accept); a CR before it is dropped
        const end = lf > 0 && data[lf - 1] === 0x0d ? lf - 1 : lf;
        events.push({ kind: 'line', line: data.subarray(0, end).toString('latin1') });
      }
      data = data.subarray(lf + 1);
    }
    if (data.length > this.max) {
      this.discarding = true;
      data = Buffer.alloc(0);
    }
    this.buffer = this.discarding ? Buffer.alloc(0) : Buffer.from(data);
    return events;
  }

  /** Bytes received after the last complete line (STARTTLS must find none: CVE-2011-0411). */
  pending(): number {
    return this.buffer.length;
  }

  /** Drop whatever was received but not yet framed. */
  reset(): void {
    this.buffer = Buffer.alloc(0);
    this.discarding = false;
  }
}
