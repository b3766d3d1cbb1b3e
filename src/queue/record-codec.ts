/**
 * How envelope records are sealed on disk, as OpenSMTPD's queue_envelope_dump_buffer() and
 * queue_envelope_load_buffer() do it: with `queue compression` the record is gzipped, with
 * `queue encryption` it is then encrypted (crypto.ts); loading undoes both in reverse order. The
 * front (queue.ts) picks the codec; backends store what it gives them and never look inside.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { decryptBuffer, encryptBuffer } from './crypto.js';
import { decodeEnvelope, encodeEnvelope, type Decoded } from './envelope-codec.js';
import type { Envelope } from './envelope.js';

export interface RecordCodec {
  /** A plain record is text (JSON); a sealed one is bytes. */
  encode(e: Envelope): string | Buffer;
  decode(record: string | Uint8Array, evpid: string): Decoded;
}

function text(record: string | Uint8Array): string {
  return typeof record === 'string' ? record : Buffer.from(record.buffer, record.byteOffset, record.byteLength).toString('utf8');
}

export const plainRecords: RecordCodec = {
  encode: (e) => encodeEnvelope(e),
  decode: (record, evpid) => decodeEnvelope(text(record), evpid),
};

export function recordCodec(opts: { compress: boolean; key?: Buffer }): RecordCodec {
  const { compress, key } = opts;
  if (!compress && !key) return plainRecords;
  return {
    encode(e) {
      let data = Buffer.from(encodeEnvelope(e), 'utf8');
      if (compress) data = gzipSync(data);
      return key ? encryptBuffer(key, data) : data;
    },
    decode(record, evpid) {
      let data: Buffer;
      try {
        // a record in clear where a sealed one belongs is damaged too, as smtpd's load fails on it
        data = typeof record === 'string' ? Buffer.from(record, 'binary') : Buffer.from(record);
        if (key) data = decryptBuffer(key, data);
        if (compress) data = gunzipSync(data);
      } catch (err) {
        return { ok: false, reason: key ? `failed authentication (tampered or wrong key): ${(err as Error).message}` : `not valid gzip: ${(err as Error).message}` };
      }
      return decodeEnvelope(data.toString('utf8'), evpid);
    },
  };
}

/**
 * For stores whose record column is text (postgres): a sealed record is kept as `=` and its
 * base64, which no plain (JSON) record starts with.
 */
export function recordAsText(record: string | Buffer): string {
  return typeof record === 'string' ? record : `=${record.toString('base64')}`;
}

export function recordFromText(text: string): string | Buffer {
  return text.startsWith('=') ? Buffer.from(text.slice(1), 'base64') : text;
}
