/**
 * Maildir delivery as mail.maildir does it, made crash-safe: the message is written under tmp/
 * with a unique name, fsynced, linked into new/ and the directory fsynced, so a message is either
 * wholly in new/ or not there at all. With `junk`, spam goes to the Maildir++ folder `.Junk`.
 */
import { constants } from 'node:fs';
import { link, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { DeliveryResult } from '../bus/messages.js';
import { ChunkBuffer, isSpamLine, LF } from './message.js';
import { fromFsError, ok, permfail } from './results.js';

export interface MaildirJob {
  /** Absolute path of the maildir, already expanded (`%{user.directory}/Maildir` by default). */
  path: string;
  /** `maildir junk`: file spam into `.Junk`, creating it. */
  junk: boolean;
  /** A filter marked the envelope as junk (counts only with `junk`, like the header). */
  envelopeJunk: boolean;
  /** The recipient's sub-address: delivered into `.EXTENSION` when that folder exists. */
  extension?: string;
}

/** The characters mail.maildir replaces by `:` in a folder name taken from an extension. */
const FOLDER_ESCAPE = "!#$%&'*/?^`{|}~";

let seq = 0;

/** `time.MusecPpidQseqRrand.host`: unique across processes, deliveries and clock steps. */
export function uniqueName(now = Date.now(), host = hostname()): string {
  seq = (seq + 1) % 1_000_000_000;
  const sec = Math.floor(now / 1000);
  const usec = (now % 1000) * 1000;
  const safeHost = (host || 'localhost').replace(/\//g, '\\057').replace(/:/g, '\\072');
  return `${sec}.M${usec}P${process.pid}Q${seq}R${randomBytes(4).toString('hex')}.${safeHost}`;
}

export async function deliverMaildir(job: MaildirJob, lines: AsyncIterable<Buffer>): Promise<DeliveryResult> {
  if (!isAbsolute(job.path)) return permfail(`maildir path is not absolute: ${job.path}`);
  let target: string;
  try {
    await makeMaildir(job.path);
    if (job.junk) await makeMaildir(join(job.path, '.Junk'));
    target = await extensionFolder(job.path, job.extension);
  } catch (err) {
    return fromFsError(err, 'maildir');
  }
  return writeAndLink(job, target, lines);
}

async function writeAndLink(job: MaildirJob, target: string, lines: AsyncIterable<Buffer>): Promise<DeliveryResult> {
  const name = uniqueName();
  const tmpPath = join(target, 'tmp', name);
  let spam = job.junk && job.envelopeJunk;
  try {
    const fh = await open(tmpPath, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW, 0o600);
    try {
      const out = new ChunkBuffer(async (chunk) => { await fh.write(chunk); });
      let inHeader = true;
      for await (const line of lines) {
        if (line.length === 0) inHeader = false;
        if (job.junk && inHeader && isSpamLine(line)) spam = true;
        await out.push(line, LF);
      }
      await out.flush();
      await fh.sync();
    } finally {
      await fh.close();
    }
    const folder = spam ? join(job.path, '.Junk') : target;
    await publish(tmpPath, join(folder, 'new'), name);
    return ok();
  } catch (err) {
    await unlink(tmpPath).catch(() => undefined);
    return fromFsError(err, 'maildir');
  }
}

/** tmp/ → new/ without ever replacing a file, then make the new entry durable. */
async function publish(tmpPath: string, newDir: string, name: string): Promise<void> {
  const dest = join(newDir, name);
  try {
    await link(tmpPath, dest);
    await unlink(tmpPath);
  } catch (err) {
    // some file systems refuse hard links; the name is unique, so rename is safe there
    if ((err as NodeJS.ErrnoException).code !== 'EPERM' && (err as NodeJS.ErrnoException).code !== 'ENOTSUP') throw err;
    await rename(tmpPath, dest);
  }
  await syncDir(newDir);
}

export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Create the maildir and its cur/, tmp/ and new/ (mode 0700) when missing. */
export async function makeMaildir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const sub of ['cur', 'tmp', 'new']) {
    await mkdir(join(dir, sub), { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  }
}

/** `.EXTENSION` when the user made that folder; the maildir itself otherwise. */
async function extensionFolder(root: string, extension: string | undefined): Promise<string> {
  if (!extension) return root;
  let folder = '';
  for (const ch of extension) folder += FOLDER_ESCAPE.includes(ch) ? ':' : ch;
  // '.' and '..' would leave the maildir
  if (folder === '' || folder === '.' || folder === '..') return root;
  const candidate = join(root, '.' + folder);
  const st = await stat(candidate).catch(() => null);
  if (!st?.isDirectory()) return root;
  await makeMaildir(candidate);
  return candidate;
}
