/**
 * The control protocol between tsmtpctl and the daemon: one JSON object per line, versioned.
 * A request names a command and its words; a reply carries data or an error, and a streaming
 * command (monitor) sends replies with `more: true` until the client hangs up.
 */

export const CONTROL_VERSION = 1;
/** A request line longer than this is refused: commands are short. */
export const MAX_LINE = 64 * 1024;

export interface ControlRequest {
  v: number;
  id: number;
  /** The command's words as typed, e.g. ['show', 'queue'], ['pause', 'envelope', 'all']. */
  words: string[];
}

export type ControlReply =
  | { v: number; id: number; ok: true; data: unknown; more?: boolean }
  | { v: number; id: number; ok: false; error: { code: string; message: string } };

export function encode(message: ControlRequest | ControlReply): string {
  return JSON.stringify(message) + '\n';
}

/** Parse one request line; a malformed one yields an error reply text instead of a throw. */
export function decodeRequest(line: string): ControlRequest | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { error: 'malformed request' };
  }
  if (typeof value !== 'object' || value === null) return { error: 'malformed request' };
  const r = value as Partial<ControlRequest>;
  if (r.v !== CONTROL_VERSION) return { error: `protocol version mismatch: daemon speaks ${CONTROL_VERSION}` };
  if (typeof r.id !== 'number' || !Array.isArray(r.words) || !r.words.every((w) => typeof w === 'string')) {
    return { error: 'malformed request' };
  }
  return { v: r.v, id: r.id, words: r.words };
}

export function decodeReply(line: string): ControlReply {
  const value = JSON.parse(line) as ControlReply;
  if (typeof value !== 'object' || value === null || typeof value.ok !== 'boolean') {
    throw new Error('malformed reply from daemon');
  }
  return value;
}

/** Split a byte stream into lines, refusing any longer than `max` (the peer is then dropped). */
export class LineSplitter {
  private pending = '';
  constructor(private readonly max = MAX_LINE) {}

  push(chunk: string): string[] | null {
    this.pending += chunk;
    const parts = this.pending.split('\n');
    this.pending = parts.pop()!;
    if (this.pending.length > this.max || parts.some((p) => p.length > this.max)) return null;
    return parts;
  }
}
