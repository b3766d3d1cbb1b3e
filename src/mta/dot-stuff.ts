/**
 * DATA framing for the client side: double a dot at the start of every line and close with
 * `CRLF.CRLF`, chunk by chunk, so a body file streams out without being held in memory.
 */

const DOT = 0x2e;
const LF = 0x0a;
const CR = 0x0d;

export class DotStuffer {
  private atLineStart = true;
  /** The last two bytes sent, to know whether the body already ends with CRLF. */
  private tail: number[] = [];

  push(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk;
    const parts: Buffer[] = [];
    let from = 0;
    for (let i = 0; i < chunk.length; i++) {
      if (this.atLineStart && chunk[i] === DOT) {
        parts.push(chunk.subarray(from, i), Buffer.from('.'));
        from = i;
      }
      this.atLineStart = chunk[i] === LF;
    }
    parts.push(chunk.subarray(from));
    this.tail = [...this.tail, ...chunk.subarray(Math.max(0, chunk.length - 2))].slice(-2);
    return Buffer.concat(parts);
  }

  /** The terminator, preceded by CRLF when the body did not end a line itself. */
  end(): Buffer {
    const endsLine = this.tail.length === 2 && this.tail[0] === CR && this.tail[1] === LF;
    const empty = this.tail.length === 0;
    return Buffer.from(endsLine || empty ? '.\r\n' : '\r\n.\r\n');
  }
}

/** The whole framing of one body at once (tests and small messages). */
export function dotStuff(body: Buffer): Buffer {
  const s = new DotStuffer();
  return Buffer.concat([s.push(body), s.end()]);
}
