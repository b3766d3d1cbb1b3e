/**
 * mbox delivery: append `From sender date`, the message with `>From ` quoting and a blank line,
 * as mail.local (the `mbox` method, /var/mail/USER) and mail.mboxfile (alias `/file` targets) do,
 * under mail.local's locks, and undo a partial append so the mailbox never holds half a message.
 */
import { constants } from 'node:fs';
import { lstat, open, stat, type FileHandle } from 'node:fs/promises';
import type { DeliveryResult } from '../bus/messages.js';
import type { Clock } from '../clock.js';
import { acquireDotlock, holdFlock, type Release } from './lock.js';
import { ChunkBuffer, LF } from './message.js';
import { fromFsError, ok, tempfail } from './results.js';

export interface MboxJob {
  /** The mailbox file. */
  path: string;
  /** The `From ` line's sender: the envelope sender, or MAILER-DAEMON for `<>`. */
  from: string;
  /** Give a newly created mailbox to its user (only when running as root). */
  owner?: { uid: number; gid: number };
  /** mail.local's `USER.lock` in the spool directory; absent for `/file` targets (as mboxfile). */
  dotlock?: { path: string; waitMs: number; staleMs: number };
  /** How long to wait for another program's flock(2) on the mailbox. */
  flockWaitMs: number;
  /** Refuse a spool directory anyone may write to, as mail.local 7.8 does. */
  spoolDir?: string;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** ctime(3) without its newline: `Thu Nov 24 18:22:48 1986`, local time. */
export function ctime(ms: number): string {
  const d = new Date(ms);
  const p2 = (n: number): string => String(n).padStart(2, '0');
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ` +
    `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${d.getFullYear()}`;
}

/** The separator line; whitespace or control bytes in the sender would break its fields. */
export function fromLine(from: string, ms: number): Buffer {
  const safe = from.replace(/[\x00-\x20\x7f]/g, '_') || 'MAILER-DAEMON';
  return Buffer.from(`From ${safe} ${ctime(ms)}`, 'utf8');
}

const FROM_ = Buffer.from('From ');
const QUOTE = Buffer.from('>');

/** Lines as they go into the mailbox: a body line starting `From ` would start a new message. */
export function needsQuote(line: Buffer): boolean {
  return line.length >= 5 && line.subarray(0, 5).equals(FROM_);
}

export async function deliverMbox(job: MboxJob, lines: AsyncIterable<Buffer>, clock: Clock): Promise<DeliveryResult> {
  if (job.spoolDir) {
    const st = await stat(job.spoolDir).catch(() => null);
    if (st && (st.mode & 0o002) !== 0) return tempfail(`${job.spoolDir}: will not deliver to world-writable spool`);
  }
  let releaseDot: Release | null = null;
  try {
    if (job.dotlock) {
      releaseDot = await acquireDotlock(job.dotlock.path, { ...job.dotlock, clock });
      if (!releaseDot) return tempfail(`${job.dotlock.path}: mailbox is locked`);
    }
    return await lockedAppend(job, lines, clock);
  } catch (err) {
    return fromFsError(err, job.path);
  } finally {
    if (releaseDot) await releaseDot();
  }
}

async function lockedAppend(job: MboxJob, lines: AsyncIterable<Buffer>, clock: Clock): Promise<DeliveryResult> {
  const opened = await openMailbox(job);
  if ('result' in opened) return opened;
  const fh = opened;
  try {
    const lock = await holdFlock(job.path, job.flockWaitMs);
    if (!lock.held && lock.reason === 'timeout') return tempfail(`${job.path}: mailbox is locked (flock)`);
    try {
      return await append(fh, job, lines, clock);
    } finally {
      if (lock.held) await lock.release();
    }
  } finally {
    await fh.close();
  }
}

async function append(fh: FileHandle, job: MboxJob, lines: AsyncIterable<Buffer>, clock: Clock): Promise<DeliveryResult> {
  const start = (await fh.stat()).size;
  try {
    const out = new ChunkBuffer(async (chunk) => { await fh.write(chunk); });
    await out.push(fromLine(job.from, clock.now()), LF);
    for await (const line of lines) {
      if (needsQuote(line)) await out.push(QUOTE);
      await out.push(line, LF);
    }
    await out.push(LF);
    await out.flush();
    await fh.sync();
    return ok();
  } catch (err) {
    // leave the mailbox as it was: a torn message would corrupt every later one
    await fh.truncate(start).catch(() => undefined);
    return fromFsError(err, job.path);
  }
}

/** Open for append, creating it 0600 for its owner; refuse links and special files like mail.local. */
async function openMailbox(job: MboxJob): Promise<FileHandle | DeliveryResult> {
  const flags = constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW;
  for (let attempt = 0; attempt < 3; attempt++) {
    const st = await lstat(job.path).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (!st) {
      const fh = await open(job.path, flags | constants.O_CREAT | constants.O_EXCL, 0o600).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'EEXIST') return null;
        throw err;
      });
      if (!fh) continue;
      if (job.owner && process.getuid?.() === 0) await fh.chown(job.owner.uid, job.owner.gid);
      return fh;
    }
    if (!st.isFile() || st.nlink !== 1) return tempfail(`${job.path}: linked or special file`);
    const fh = await open(job.path, flags);
    const fst = await fh.stat();
    if (fst.dev !== st.dev || fst.ino !== st.ino || fst.nlink !== 1) {
      await fh.close();
      return tempfail(`${job.path}: changed after open`);
    }
    return fh;
  }
  return tempfail(`${job.path}: could not create mailbox`);
}
