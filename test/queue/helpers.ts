/** Shared fixtures for the queue tests: temp spools, envelopes, bodies, a quiet log. */
import { closeSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../src/clock.js';
import { configureLog } from '../../src/log.js';
import type { QueueBackend } from '../../src/queue/backend.js';
import type { Envelope } from '../../src/queue/envelope.js';
import { Queue, type NewEnvelope } from '../../src/queue/queue.js';

/** Log lines land here instead of stderr, so tests can assert on them. */
export const logged: string[] = [];
configureLog({ sink: { write: (l) => void logged.push(l) }, level: 'debug' });

export async function tempDir(prefix = 'tsmtpd-queue-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export function newEnvelope(over: Partial<NewEnvelope> = {}): NewEnvelope {
  return {
    kind: 'mda', action: 'local', hostname: 'mx.example.org', helo: 'client.example.net',
    clientAddress: '127.0.0.1', sender: 'alice@example.net', rcpt: 'bob@example.org',
    origRcpt: 'Bob@Example.org', dsn: { notify: ['FAILURE'], ret: 'HDRS' }, smtputf8: false, junk: false,
    createdAt: 1_780_000_000, ttl: 345600, tries: 0, lastTry: 0, lastWarn: 0, ...over,
  };
}

export function fullEnvelope(over: Partial<Envelope> = {}): Envelope {
  return { ...newEnvelope(), id: '0123456789abcdef', msgid: '01234567', ...over };
}

export function makeQueue(
  backend: QueueBackend,
  spool: string,
  opts: { compression?: boolean; encryptionKey?: string } = {},
): Queue {
  const o: ConstructorParameters<typeof Queue>[1] = { spool, clock: systemClock, compression: opts.compression ?? false };
  if (opts.encryptionKey !== undefined) o.encryptionKey = opts.encryptionKey;
  return new Queue(backend, o);
}

/** Create a message, write `text` as its body, commit it with `n` recipients. */
export async function submit(q: Queue, text: string | Buffer, n = 1): Promise<Envelope[]> {
  const { msgid, path, fd } = await q.create();
  closeSync(fd);
  await writeFile(path, text);
  const envs = Array.from({ length: n }, (_, i) => newEnvelope({ rcpt: `r${i}@example.org` }));
  return q.commit(msgid, envs, Buffer.byteLength(text));
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
