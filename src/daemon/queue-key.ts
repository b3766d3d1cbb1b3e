/**
 * The queue key when smtpd.conf does not write it, read by the parent before anything starts, as
 * smtpd.c main() reads it: `queue encryption stdin` (or `-`) takes the first line of standard input
 * (getline(), its newline dropped); `queue encryption` alone asks "queue key: " on the terminal with
 * echo off (getpass(), which reads standard input when there is no terminal). The key is then
 * checked as crypto_setup() checks it (32 octets as written) and handed to the queue process only.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import type { Config } from '../config/types.js';
import { queueKey } from '../queue/crypto.js';

/** One line from `fd`, without its newline; null at end of file before any octet (getline's -1). */
export function readLine(fd: number): string | null {
  const octets: number[] = [];
  const one = Buffer.alloc(1);
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, one, 0, 1, null);
    } catch (err) {
      // a non-blocking pipe with nothing yet: wait for the writer
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      throw err;
    }
    if (n === 0) return octets.length ? Buffer.from(octets).toString('utf8') : null;
    if (one[0] === 0x0a) return Buffer.from(octets).toString('utf8');
    octets.push(one[0]!);
  }
}

/** getpass(): the controlling terminal with echo off, else standard input. */
function getpass(prompt: string): string | null {
  let tty: number;
  try {
    tty = openSync('/dev/tty', 'r+');
  } catch {
    return readLine(0);
  }
  try {
    const stty = (args: string[]) => execFileSync('stty', args, { stdio: [tty, 'ignore', 'ignore'] });
    // echo off before the prompt, as readpassphrase() does: what is typed after it is never shown
    stty(['-echo']);
    try {
      writeSync(tty, prompt);
      return readLine(tty)?.replace(/\r$/, '') ?? null;
    } finally {
      stty(['echo']);
      writeSync(tty, '\n');
    }
  } finally {
    closeSync(tty);
  }
}

/**
 * Fill `config.queue.encryption.key` when the config left it to start. `fromParent`: this is the
 * detached daemon, whose parent read the key and writes it on our standard input.
 */
export function obtainQueueKey(config: Config, fromParent: boolean): void {
  const enc = config.queue.encryption;
  if (!enc || enc.key !== undefined) return;
  const key = fromParent || enc.from === 'stdin' ? readLine(0) : getpass('queue key: ');
  if (key === null) throw new Error(enc.from === 'stdin' ? 'queue encryption stdin: no key on standard input' : 'queue encryption: no key given');
  queueKey(key);
  enc.key = key;
}

/** What a process other than the queue is told: no queue key (smtpd.c sends IMSG_SETUP_KEY to the queue only). */
export function withoutQueueKey(config: Config): Config {
  if (!config.queue.encryption) return config;
  return { ...config, queue: { ...config.queue, encryption: { from: config.queue.encryption.from } } };
}
