/**
 * The session's side of the listener's filters: report events and phase requests sent to the
 * lka, and the message body streamed through data-line filters on its way to the queue file.
 * A listener without `filter` pays nothing: every call returns at once.
 */
import type { Endpoint } from '../bus/bus.js';
import type { SessionFacts } from '../bus/messages.js';
import type { FilterPhase } from '../config/types.js';
import type { PhaseVerdict } from '../filter/engine.js';

const PROCEED = (param: string): PhaseVerdict => ({ kind: 'proceed', junk: false, param, dataLine: false });
/** The lka did not answer: the session cannot know the filters' decision, so it ends. */
const UNAVAILABLE: PhaseVerdict = { kind: 'disconnect', reply: { code: 421, enhanced: '4.3.0', text: 'Temporary filter failure' } };

export class SessionFilters {
  constructor(
    private readonly bus: Endpoint,
    private readonly facts: SessionFacts,
    readonly enabled: boolean,
  ) {}

  report(event: string, params: string[] = []): void {
    if (this.enabled) this.bus.notify('smtp.filter.report', { facts: this.facts, event, params }, () => undefined);
  }

  async phase(phase: FilterPhase, param = '', sender?: string): Promise<PhaseVerdict> {
    if (!this.enabled) return PROCEED(param);
    try {
      return await this.bus.request('smtp.filter.phase', { facts: this.facts, phase, param, ...(sender !== undefined ? { sender } : {}) });
    } catch {
      return UNAVAILABLE;
    }
  }

  /** A body stream for one message, when the data phase said data-line filters want it. */
  body(write: (bytes: Buffer) => void): FilteredBody {
    return new FilteredBody(this.bus, this.facts, write);
  }
}

/**
 * Filters read lines into bounded buffers (Go's bufio.Scanner stops at 64 KiB, silently): a body
 * line longer than this (BDAT allows any) is not sent, the message is refused instead.
 */
const MAX_FILTER_LINE = 60_000;

export class FilterLineTooLong extends Error {
  constructor() {
    super('body line too long for data-line filters');
  }
}

/**
 * Body bytes (already dot-unstuffed by the framer) cut into lines, dot-escaped as smtpd-filters
 * want them, sent to the lka in batches; what comes back is unescaped and written with CRLF.
 * Lines are byte strings (latin1), so 8-bit bodies pass through unchanged.
 */
export class FilteredBody {
  private partial = '';

  constructor(
    private readonly bus: Endpoint,
    private readonly facts: SessionFacts,
    private readonly write: (bytes: Buffer) => void,
  ) {}

  async push(data: Buffer): Promise<void> {
    const text = this.partial + data.toString('latin1');
    const parts = text.split('\n');
    this.partial = parts.pop()!;
    if (this.partial.length > MAX_FILTER_LINE || parts.some((p) => p.length > MAX_FILTER_LINE)) throw new FilterLineTooLong();
    await this.send(parts.map(escape), false);
  }

  async end(): Promise<void> {
    const last = this.partial ? [escape(this.partial)] : [];
    this.partial = '';
    await this.send(last, true);
  }

  private async send(lines: string[], end: boolean): Promise<void> {
    if (!lines.length && !end) return;
    const res = await this.bus.request('smtp.filter.data', { facts: this.facts, lines, end });
    if (res.lines.length) this.write(Buffer.from(res.lines.map((l) => `${l.startsWith('.') ? l.slice(1) : l}\r\n`).join(''), 'latin1'));
  }
}

function escape(line: string): string {
  const l = line.endsWith('\r') ? line.slice(0, -1) : line;
  return l.startsWith('.') ? `.${l}` : l;
}
