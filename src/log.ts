/**
 * One line per event, in OpenSMTPD's style: `<16-hex id> <role> <event> key=value ...`.
 * Every value is escaped, so nothing a client sends can forge a line or a field.
 */
import type { LogEvent } from './log-events.js';

export type Level = 'error' | 'warn' | 'info' | 'debug';
const RANK: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** A value written in quotes even when it needs none, where OpenSMTPD's line has them (`result="Ok"`). */
export interface Quoted {
  quoted: string;
}
export const quoted = (value: string): Quoted => ({ quoted: value });

export type Fields = Record<string, string | number | boolean | Quoted | undefined | null>;

export interface LogSink {
  write(line: string): void;
}

/**
 * Lines are gathered and written once per turn of the event loop: stderr on a pipe or file is
 * written synchronously, and one syscall per line was a measurable share of a message's cost.
 */
let pending: string[] = [];
let flushScheduled = false;

/** PIPE_BUF on Linux: a write to a pipe no larger than this is never interleaved with another's. */
const PIPE_BUF = 4096;

export function flushLog(): void {
  flushScheduled = false;
  if (pending.length === 0) return;
  const lines = pending;
  pending = [];
  if (!syslog) return void process.stderr.write(lines.join('\n') + '\n');
  // every process writes into logger(1)'s one pipe: batches of whole lines small enough to stay whole
  for (const chunk of pipeChunks(lines)) process.stderr.write(chunk);
}

/** Lines joined into writes of at most PIPE_BUF octets, never cutting a line (a longer line goes alone). */
export function pipeChunks(lines: string[]): string[] {
  const chunks: string[] = [];
  let current = '';
  let size = 0;
  for (const line of lines) {
    const text = line + '\n';
    const bytes = Buffer.byteLength(text);
    if (size > 0 && size + bytes > PIPE_BUF) {
      chunks.push(current);
      current = '';
      size = 0;
    }
    current += text;
    size += bytes;
  }
  if (size > 0) chunks.push(current);
  return chunks;
}

process.on('exit', flushLog);

let sink: LogSink = {
  write(line) {
    pending.push(line);
    if (pending.length >= 1000) return flushLog();
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushLog);
    }
  },
};
let threshold: Level = 'info';
let stamp = false;
let syslog = false;

/**
 * syslog(3)'s priority of a line in the mail facility (LOG_MAIL, 2), which logger(1) --prio-prefix
 * reads at the start of each line: err 3, warning 4, info 6, debug 7.
 */
const SYSLOG_PRIORITY: Record<Level, number> = { error: 2 * 8 + 3, warn: 2 * 8 + 4, info: 2 * 8 + 6, debug: 2 * 8 + 7 };

/**
 * Where lines go, how verbose, and how they start: a timestamp (a detached daemon logging to a
 * file), a syslog priority (a detached daemon logging to syslog, which stamps them), or nothing (-d).
 */
export function configureLog(options: { sink?: LogSink; level?: Level; timestamps?: boolean; syslog?: boolean }): void {
  if (options.sink) sink = options.sink;
  if (options.level) threshold = options.level;
  if (options.timestamps !== undefined) stamp = options.timestamps;
  if (options.syslog !== undefined) syslog = options.syslog;
}

export function logLevel(): Level {
  return threshold;
}

/** Quote a value when it holds spaces, quotes or `=`, and escape anything not printable ASCII. */
export function escapeValue(value: string, forceQuotes = false): string {
  let out = '';
  for (const ch of value) {
    const c = ch.codePointAt(0)!;
    if (c === 0x5c) out += '\\\\';
    else if (c === 0x22) out += '\\"';
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += ch;
  }
  return forceQuotes || out === '' || /[\s"=\\]/.test(value) ? `"${out}"` : out;
}

export function formatFields(fields: Fields): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined || v === null) continue;
    parts.push(`${k}=${typeof v === 'object' ? escapeValue(v.quoted, true) : escapeValue(String(v))}`);
  }
  return parts.join(' ');
}

/** Log one event. `id` is a session, message or envelope id in hex; `-` when there is none. */
export function log(level: Level, id: string | null, role: string, event: LogEvent, fields: Fields = {}): void {
  if (RANK[level] > RANK[threshold]) return;
  emit(level, id, role, event, fields);
}

/** Write a line whatever the level: trace and profile lines (trace.ts), which the admin asked for by name. */
export function emit(level: Level, id: string | null, role: string, event: LogEvent, fields: Fields = {}): void {
  const f = formatFields(fields);
  const head = syslog ? `<${SYSLOG_PRIORITY[level]}>` : stamp ? new Date().toISOString() + ' ' : '';
  sink.write(`${head}${id ?? '-'} ${role} ${event}${f ? ' ' + f : ''}`);
}
