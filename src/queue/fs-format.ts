/**
 * The fs queue's message file: the body as received (or as compressed/encrypted), then the
 * envelope block, then a fixed-length trailer giving both lengths, so the file is read from its
 * end and the body is used in place.
 */
import type { Envelope } from './envelope.js';
import { recordAsText, type RecordCodec } from './record-codec.js';

/** `TSQ2 <body octets> <envelope block octets>`, in hex, padded to a fixed length. */
export const TRAILER_LEN = 48;

export function trailer(bodySize: number, blockSize: number): Buffer {
  const text = `TSQ2 ${bodySize.toString(16).padStart(16, '0')} ${blockSize.toString(16).padStart(16, '0')}`;
  return Buffer.from(text.padEnd(TRAILER_LEN - 1, ' ') + '\n');
}

export function parseTrailer(buf: Buffer): { bodySize: number; blockSize: number } | null {
  const m = /^TSQ2 ([0-9a-f]{16}) ([0-9a-f]{16}) *\n$/.exec(buf.toString('latin1'));
  return m ? { bodySize: parseInt(m[1]!, 16), blockSize: parseInt(m[2]!, 16) } : null;
}

/**
 * The envelope block: `[[evpid, record], ...]` as JSON, each record as the queue's record codec
 * seals it (the versioned envelope text, or `=` and the base64 of a compressed/encrypted one).
 */
export function encodeRecords(envelopes: Iterable<Envelope>, codec: RecordCodec): Buffer {
  return Buffer.from(JSON.stringify([...envelopes].map((e) => [e.id, recordAsText(codec.encode(e))])) + '\n');
}

export function decodeRecords(text: string): [string, string][] | null {
  try {
    const v = JSON.parse(text) as unknown;
    if (!Array.isArray(v) || !v.every((r) => Array.isArray(r) && r.length === 2 && typeof r[0] === 'string' && typeof r[1] === 'string')) return null;
    return v as [string, string][];
  } catch {
    return null;
  }
}

