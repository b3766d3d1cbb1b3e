/**
 * The queue's encryption as OpenSMTPD's crypto.c does it: AES-256-GCM under the 32 bytes of
 * `queue encryption KEY` taken as written (crypto_setup(): no derivation, any other length is
 * refused), each record framed as version byte 0x01, 12-byte random IV, ciphertext, 16-byte tag.
 * Bodies are streamed in the same framing by body-codec.ts; envelopes use the buffer form here
 * (crypto_encrypt_buffer / crypto_decrypt_buffer).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { QueueError } from './backend.js';

export const API_VERSION = 0x01;
export const KEY_SIZE = 32;
export const IV_SIZE = 12;
export const TAG_SIZE = 16;

/** crypto_setup(): the key's octets as they are, exactly 32 of them ("openssl rand -hex 16"). */
export function queueKey(text: string): Buffer {
  const key = Buffer.from(text, 'utf8');
  if (key.length !== KEY_SIZE) throw new QueueError('io', `crypto_setup: invalid key for queue encryption (${key.length} octets, not ${KEY_SIZE})`);
  return key;
}

/** crypto_encrypt_buffer(): version, IV, ciphertext, tag. */
export function encryptBuffer(key: Buffer, plain: Uint8Array): Buffer {
  const iv = randomBytes(IV_SIZE);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([Buffer.from([API_VERSION]), iv, body, cipher.getAuthTag()]);
}

/** crypto_decrypt_buffer(): throws on a wrong version, a short record, a bad tag or the wrong key. */
export function decryptBuffer(key: Buffer, sealed: Uint8Array): Buffer {
  if (sealed.length < 1 + IV_SIZE + TAG_SIZE) throw new Error('too short to be an encrypted record');
  if (sealed[0] !== API_VERSION) throw new Error(`unknown encryption version ${sealed[0]}`);
  const iv = sealed.subarray(1, 1 + IV_SIZE);
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
  return Buffer.concat([decipher.update(sealed.subarray(1 + IV_SIZE, sealed.length - TAG_SIZE)), decipher.final()]);
}
