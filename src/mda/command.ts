/**
 * `mda "command"` and alias `|command` delivery as OpenSMTPD's parent runs them: `/bin/sh -c`
 * with the message on stdin, the environment of mda_unpriv.c, its own session and process group,
 * output captured for the error text, a time limit, and the exit status read as sysexits(3).
 */
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import type { DeliveryResult } from '../bus/messages.js';
import { splitAddress } from './format.js';
import { LF } from './message.js';
import { killGroup, track } from './procs.js';
import { classifyExit, ok, permfail, sysexitText, tempfail } from './results.js';

/** glibc's _PATH_DEFPATH, what OpenSMTPD's PATH= is on Linux. */
export const DEFAULT_PATH = '/usr/bin:/bin';

export interface EnvFacts {
  /** Envelope sender, '' for `<>`. */
  sender: string;
  /** The recipient as received (ORIGINAL_RECIPIENT, LOCAL, DOMAIN). */
  rcpt: string;
  /** The final recipient (RECIPIENT). */
  dest: string;
  username: string;
  /** HOME: the delivery user's home directory. */
  home: string;
  /** The sub-address (`+tag`), when there is one. */
  extension?: string;
}

/** The environment OpenSMTPD 7.8 gives an mda command; nothing of the daemon's own leaks in. */
export function mdaEnv(f: EnvFacts): Record<string, string> {
  const [ruser, rdomain] = splitAddress(f.rcpt);
  const env: Record<string, string> = {
    PATH: DEFAULT_PATH,
    DOMAIN: rdomain,
    HOME: f.home,
    ORIGINAL_RECIPIENT: f.rcpt,
    RECIPIENT: f.dest,
    SHELL: '/bin/sh',
    LOCAL: ruser,
    LOGNAME: f.username,
    USER: f.username,
    SENDER: f.sender,
  };
  if (f.extension) env['EXTENSION'] = f.extension;
  return env;
}

export interface CommandJob {
  /** The final command line, formats expanded and wrapper applied. */
  command: string;
  env: Record<string, string>;
  /** The user's home; `/` when it cannot be entered (as forkmda's chdir fallback). */
  home: string;
  uid?: number;
  gid?: number;
  timeoutMs: number;
}

/** Output kept for the error text: only the tail matters, so a chatty command costs no memory. */
const OUTPUT_TAIL = 8 * 1024;

export async function runCommand(job: CommandJob, lines: AsyncIterable<Buffer>): Promise<DeliveryResult> {
  const cwd = (await stat(job.home).catch(() => null))?.isDirectory() ? job.home : '/';
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', job.command], {
      cwd, env: job.env, detached: true, stdio: ['pipe', 'pipe', 'pipe'],
      ...(job.uid !== undefined ? { uid: job.uid } : {}),
      ...(job.gid !== undefined ? { gid: job.gid } : {}),
    });
    track(child);
    let output = Buffer.alloc(0);
    const keep = (chunk: Buffer): void => {
      output = Buffer.concat([output, chunk]);
      if (output.length > OUTPUT_TAIL) output = output.subarray(output.length - OUTPUT_TAIL);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; killGroup(child.pid); }, job.timeoutMs);
    let unreadable = false;
    const fed = feed(child.stdin!, lines, () => { unreadable = true; killGroup(child.pid); });
    child.on('error', (err) => { clearTimeout(timer); resolve(tempfail(`cannot run mda: ${err.message}`)); });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const finish = (): void => {
        clearTimeout(grace);
        // the command has ended: never let a stuck writer hold the result back
        const settled = new Promise<void>((r) => setTimeout(r, 1000));
        void Promise.race([fed, settled]).then(() => resolve(unreadable
          ? tempfail('Error reading body')
          : outcome(code, signal, timedOut, lastLine(output))));
      };
      // a background process left holding our pipes must not hold the delivery's result
      const grace = setTimeout(() => { child.stdout!.destroy(); child.stderr!.destroy(); finish(); }, 1000);
      child.once('close', finish);
    });
  });
}

/**
 * Write the message; false when the command stopped reading before the end. If the message
 * cannot be read, `onReadError` runs before stdin closes, so the command is killed rather than
 * left to deliver a truncated message it takes for whole.
 */
export async function feed(stdin: Writable, lines: AsyncIterable<Buffer>, onReadError: () => void): Promise<boolean> {
  let broken = false;
  stdin.on('error', () => { broken = true; });
  const gone = (): boolean => broken || stdin.destroyed;
  try {
    for await (const line of lines) {
      if (gone()) return false;
      if (!stdin.write(Buffer.concat([line, LF]))) await waitDrain(stdin, gone);
    }
  } catch {
    onReadError();
    return false;
  }
  if (gone()) return false;
  stdin.end();
  return true;
}

/** Resolves on drain, or once the pipe is gone (it may have closed before we started waiting). */
function waitDrain(stream: Writable, gone: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    if (gone()) return resolve();
    const done = (): void => {
      stream.off('drain', done).off('error', done).off('close', done);
      resolve();
    };
    stream.on('drain', done).on('error', done).on('close', done);
  });
}

/**
 * OpenSMTPD's reading of how the command ended; its output's last line is the best error text.
 * Unlike OpenSMTPD, exit 0 is a delivery even if the command stopped reading early: whether the
 * pipe was drained before it exited is a race, and the command's own word is the deterministic one.
 */
export function outcome(code: number | null, signal: string | null, timedOut: boolean, last: string | null): DeliveryResult {
  if (timedOut) return tempfail(last ?? 'terminated; timeout');
  if (signal !== null || code === null) return tempfail(last ?? `terminated; signal ${signal ?? '?'}`);
  const kind = classifyExit(code);
  if (kind === 'ok') return ok();
  const sys = sysexitText(code);
  const detail = (sys ? `${sys}: ` : '') + (last ?? 'exited abnormally');
  return kind === 'tempfail' ? tempfail(detail) : permfail(detail);
}

/** The last non-empty output line, quoted and with control bytes made visible (strnvis-like). */
export function lastLine(output: Buffer): string | null {
  const lines = output.toString('utf8').split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.trim() !== '');
  const last = lines[lines.length - 1];
  if (last === undefined) return null;
  const vis = last.replace(/[\x00-\x1f\x7f\\"]/g, (c) => (c === '\\' || c === '"' ? '\\' + c : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
  return `"${vis.slice(0, 240)}"`;
}
