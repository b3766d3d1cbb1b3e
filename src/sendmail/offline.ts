/**
 * OpenSMTPD's offline queue, sendmail's side: with the daemon down, a message is kept in
 * `SPOOL/offline` as one file the submitting user owns (mode 0600, named `<time>.<random>`, as
 * smtpctl.c offline_file makes it): the first line is sendmail's arguments joined with `|`, the
 * rest is the message (enqueue.c enqueue_offline). The daemon replays each file at start by
 * running sendmail again as its owner with those arguments (daemon/offline.ts).
 */
import { randomInt } from 'node:crypto';
import { open, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** PATH_OFFLINE: world-writable and sticky, so anyone may drop a file and only its owner remove it. */
export const OFFLINE_DIR = 'offline';
export const OFFLINE_DIR_MODE = 0o1777;

export class OfflineArgumentError extends Error {}

/** The first line of an offline file; `|` separates arguments, so none may hold one (nor a line end). */
export function encodeArgs(argv: readonly string[]): string {
  const bad = argv.find((a) => /[|\r\n]/.test(a));
  if (bad !== undefined) throw new OfflineArgumentError(`${bad} contains illegal character`);
  return argv.join('|');
}

export function decodeArgs(line: string): string[] {
  return line === '' ? [] : line.split('|');
}

const NAME_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** mkstemp's `<time>.XXXXXXXXXX`. */
function offlineName(now: Date): string {
  let suffix = '';
  for (let i = 0; i < 10; i++) suffix += NAME_CHARS[randomInt(NAME_CHARS.length)];
  return `${Math.floor(now.getTime() / 1000)}.${suffix}`;
}

/** Store the message for the daemon to enqueue when it starts; returns the file's path. */
export async function storeOffline(spool: string, argv: readonly string[], lines: AsyncIterable<string>, now = new Date()): Promise<string> {
  const first = encodeArgs(argv);
  const path = join(spool, OFFLINE_DIR, offlineName(now));
  // O_EXCL: never through a name someone else placed in the shared directory
  const file = await open(path, 'wx', 0o600);
  try {
    await file.write(`${first}\n`);
    let chunk = '';
    for await (const line of lines) {
      chunk += `${line}\n`;
      if (chunk.length >= 64 * 1024) {
        await file.write(chunk);
        chunk = '';
      }
    }
    await file.write(chunk);
    // exit 0 says the message is safe: it must be on disk first
    await file.sync();
    await file.close();
    return path;
  } catch (err) {
    await file.close().catch(() => undefined);
    await unlink(path).catch(() => undefined);
    throw err;
  }
}
