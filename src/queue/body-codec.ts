/**
 * Compression (gzip) then encryption (AES-256-GCM) of message bodies, streamed file to file so a
 * body is never whole in memory. Encrypted framing as OpenSMTPD's crypto_encrypt_file(): 0x01,
 * 12-byte IV, ciphertext, 16-byte tag. Decoding writes to a file the caller hands out only once the tag has verified.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { QueueError } from './backend.js';
import { API_VERSION as VERSION, IV_SIZE as IV_LEN, TAG_SIZE as TAG_LEN } from './crypto.js';

export interface BodyCodec {
  compress: boolean;
  /** 32-byte AES key (crypto.ts queueKey()), or none. */
  key?: Buffer;
}

export function isPlain(codec: BodyCodec): boolean {
  return !codec.compress && !codec.key;
}

function encryptor(key: Buffer): Transform {
  const iv = randomBytes(IV_LEN);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  let started = false;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (!started) {
        this.push(Buffer.concat([Buffer.from([VERSION]), iv]));
        started = true;
      }
      cb(null, cipher.update(chunk));
    },
    flush(cb: TransformCallback) {
      if (!started) this.push(Buffer.concat([Buffer.from([VERSION]), iv]));
      this.push(cipher.final());
      cb(null, cipher.getAuthTag());
    },
  });
}

/** Encode `src` into a new file `dst` (which must not exist). */
export async function encodeBody(src: string, dst: string, codec: BodyCodec): Promise<void> {
  const stages: NodeJS.ReadWriteStream[] = [];
  if (codec.compress) stages.push(createGzip());
  if (codec.key) stages.push(encryptor(codec.key));
  await pipeline([createReadStream(src), ...stages, createWriteStream(dst, { flags: 'wx', mode: 0o600 })]);
}

async function readHeaderAndTag(src: string, size: number): Promise<{ iv: Buffer; tag: Buffer; size: number }> {
  if (size < 1 + IV_LEN + TAG_LEN) throw new Error('too short to be an encrypted body');
  const fh = await open(src, 'r');
  try {
    const head = Buffer.alloc(1 + IV_LEN);
    const tag = Buffer.alloc(TAG_LEN);
    await fh.read(head, 0, head.length, 0);
    await fh.read(tag, 0, TAG_LEN, size - TAG_LEN);
    if (head[0] !== VERSION) throw new Error(`unknown encryption version ${head[0]}`);
    return { iv: head.subarray(1), tag, size };
  } finally {
    await fh.close();
  }
}

async function decodeStreams(src: string, length: number, codec: BodyCodec): Promise<NodeJS.ReadableStream[]> {
  if (!codec.key) return [length > 0 ? createReadStream(src, { end: length - 1 }) : emptyStream()];
  const { iv, tag, size } = await readHeaderAndTag(src, length);
  const decipher = createDecipheriv('aes-256-gcm', codec.key, iv);
  decipher.setAuthTag(tag);
  const body = size - 1 - IV_LEN - TAG_LEN;
  // createReadStream's end is inclusive; an empty ciphertext still needs final() to check the tag
  const input = body > 0 ? createReadStream(src, { start: 1 + IV_LEN, end: 1 + IV_LEN + body - 1 }) : emptyStream();
  return [input, decipher];
}

function emptyStream(): NodeJS.ReadableStream {
  return Readable.from([]);
}

/**
 * Decode the first `length` octets of `src` (all of it by default) into a new file `dst`; a
 * tampered, truncated or wrongly keyed body is an error, and no dst remains.
 */
export async function decodeBody(src: string, dst: string, codec: BodyCodec, length?: number): Promise<void> {
  try {
    const stages: NodeJS.ReadWriteStream[] = [];
    if (codec.compress) stages.push(createGunzip());
    const [input, ...rest] = await decodeStreams(src, length ?? (await stat(src)).size, codec);
    await pipeline([input!, ...rest, ...stages, createWriteStream(dst, { flags: 'wx', mode: 0o600 })]);
  } catch (err) {
    await rm(dst, { force: true });
    const what = codec.key ? 'failed authentication (tampered, truncated or wrong key)' : 'is not valid gzip';
    throw new QueueError('io', `queued message body ${what}: ${(err as Error).message}`, { cause: err });
  }
}
