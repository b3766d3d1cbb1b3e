/**
 * The file and socket deliveries (maildir, mbox file, LMTP) as serializable jobs, run either in
 * the daemon's process or, when the daemon is root, in a child that has become the recipient, so
 * that every file is created with the user's ownership and permissions.
 */
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { DeliveryResult } from '../bus/messages.js';
import type { Clock } from '../clock.js';
import type { MessageBody } from '../queue/body-ref.js';
import { killGroup, track } from './procs.js';
import { deliverLmtp, type LmtpJob } from './lmtp.js';
import { deliverMaildir, type MaildirJob } from './maildir.js';
import { deliverMbox, type MboxJob } from './mbox.js';
import { fromFsError, tempfail } from './results.js';

export type Job =
  | { kind: 'maildir'; maildir: MaildirJob }
  | { kind: 'mbox'; mbox: MboxJob }
  | { kind: 'lmtp'; lmtp: LmtpJob };

/** Run a job here; one result per recipient (one, except for an LMTP job with several). */
export async function runJob(job: Job, lines: AsyncIterable<Buffer>, clock: Clock): Promise<DeliveryResult[]> {
  switch (job.kind) {
    case 'maildir':
      return [await deliverMaildir(job.maildir, lines)];
    case 'mbox':
      return [await deliverMbox(job.mbox, lines, clock)];
    case 'lmtp':
      return deliverLmtp(job.lmtp, lines);
  }
}

export interface RunAs {
  uid: number;
  gid: number;
  home: string;
}

/** dist/src/mda/deliver-child.js, beside this file once compiled. */
export const CHILD_SCRIPT = fileURLToPath(new URL('./deliver-child.js', import.meta.url));
export const JOB_ENV = 'TSMTPD_MDA_JOB';

/** Output of the child kept at most: one JSON line of results, plus any crash text. */
const MAX_CHILD_OUTPUT = 64 * 1024;

/** What the child gets in its environment: the job and the lines to write before the message. */
export interface ChildTask {
  job: Job;
  prefix: string[];
}

/**
 * Run a job in a child process as `as`, the message streamed to its stdin. The stream ends only
 * once every octet of the body was read: if reading fails half-way the child is killed while it
 * still waits for the rest, so it never publishes a truncated delivery.
 */
export async function runJobAs(task: ChildTask, body: MessageBody, as: RunAs, timeoutMs: number): Promise<DeliveryResult[]> {
  const n = task.job.kind === 'lmtp' ? task.job.lmtp.rcpts.length : 1;
  const cwd = (await stat(as.home).catch(() => null))?.isDirectory() ? as.home : '/';
  return spawnChild(task, body, as, cwd, timeoutMs, n);
}

function spawnChild(task: ChildTask, body: MessageBody, as: RunAs, cwd: string, timeoutMs: number, n: number): Promise<DeliveryResult[]> {
  const all = (r: DeliveryResult): DeliveryResult[] => Array.from({ length: n }, () => r);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CHILD_SCRIPT], {
      cwd, uid: as.uid, gid: as.gid, detached: true, stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: '/usr/bin:/bin', HOME: as.home, [JOB_ENV]: JSON.stringify(task) },
    });
    track(child);
    let readFailed: Error | null = null;
    void feed(child.stdin!, body).then((err) => {
      if (!err) return;
      // the child saw no end of input, so it has published nothing: stop it
      readFailed = err;
      killGroup(child.pid);
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => { if (out.length < MAX_CHILD_OUTPUT) out += c.toString('utf8'); });
    child.stderr!.on('data', (c: Buffer) => { if (err.length < MAX_CHILD_OUTPUT) err += c.toString('utf8'); });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; killGroup(child.pid); }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); resolve(all(tempfail(`cannot start delivery child: ${e.message}`))); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) return resolve(all(tempfail('terminated; timeout')));
      if (readFailed) return resolve(all(fromFsError(readFailed, 'cannot read message')));
      const parsed = parseResults(out, n);
      if (parsed) return resolve(parsed);
      const why = err.trim().split('\n').pop() || `exited ${code ?? 'on signal ' + signal}`;
      resolve(all(tempfail(`delivery child failed: ${why.slice(0, 200)}`)));
    });
  });
}

/**
 * Write the body to the child's stdin and end it; resolves with the error if reading the body
 * failed. A child that stops reading (it exited) is its own result, not a read error.
 */
async function feed(stdin: Writable, body: MessageBody): Promise<Error | null> {
  stdin.on('error', () => undefined);
  const chunks = body.open()[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<Buffer>;
    try {
      next = await chunks.next();
    } catch (err) {
      return err as Error;
    }
    if (next.done) break;
    if (stdin.destroyed) return null;
    if (!stdin.write(next.value)) await drainOrClose(stdin);
  }
  stdin.end();
  return null;
}

function drainOrClose(stdin: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stdin.off('drain', done);
      stdin.off('close', done);
      resolve();
    };
    stdin.on('drain', done);
    stdin.on('close', done);
  });
}

/** The child's last stdout line must be a JSON array of `n` well-formed results. */
export function parseResults(out: string, n: number): DeliveryResult[] | null {
  const line = out.trim().split('\n').pop();
  if (!line) return null;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (!Array.isArray(value) || value.length !== n || !value.every(isResult)) return null;
  return value as DeliveryResult[];
}

function isResult(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  if (typeof r['detail'] !== 'string') return false;
  if (r['result'] === 'ok') return true;
  return (r['result'] === 'tempfail' || r['result'] === 'permfail') && typeof r['enhanced'] === 'string';
}
