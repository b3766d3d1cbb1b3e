/**
 * `tsmtpctl trace SUBSYSTEM` and `profile imsg|queue`, as smtpd's log_trace() and profiling:
 * each process holds the subsystems switched on (the parent passes every change to all of them)
 * and writes a trace line at debug priority whatever the log level, as log_trace0() calls vlog()
 * directly. The subsystems are smtpctl's str_to_trace() list; `all` is every one of them.
 */
import { emit, type Fields } from './log.js';

export const TRACE_SUBSYSTEMS = [
  'imsg', 'io', 'smtp', 'filters', 'mta', 'bounce', 'scheduler', 'lookup', 'stat', 'rules', 'mproc', 'expand',
] as const;
export type TraceSubsystem = (typeof TRACE_SUBSYSTEMS)[number];

/** str_to_profile(): imsg (each bus message handled, timed) and queue (each queue operation, timed). */
export const PROFILE_SUBSYSTEMS = ['imsg', 'queue'] as const;
export type ProfileSubsystem = (typeof PROFILE_SUBSYSTEMS)[number];

const tracing = new Set<string>();
const profiling = new Set<string>();

export function setTracing(on: readonly string[], profiles: readonly string[]): void {
  tracing.clear();
  for (const s of on) tracing.add(s);
  profiling.clear();
  for (const p of profiles) profiling.add(p);
}

export function tracingOn(subsystem: TraceSubsystem): boolean {
  return tracing.has(subsystem);
}

/** log_trace(TRACE_X, ...): a `trace` line naming its subsystem, when that subsystem is on. */
export function trace(subsystem: TraceSubsystem, id: string | null, role: string, fields: Fields): void {
  if (tracing.has(subsystem)) emit('debug', id, role, 'trace', { subsystem, ...fields });
}

export function profilingOn(what: ProfileSubsystem): boolean {
  return profiling.has(what);
}

/** profile_enter()/profile_leave() around `work`: `profile-queue op=... seconds=...`. */
export async function profileQueue<T>(op: string, work: () => Promise<T>): Promise<T> {
  if (!profiling.has('queue')) return work();
  const t0 = process.hrtime.bigint();
  try {
    return await work();
  } finally {
    emit('debug', null, 'queue', 'profile-queue', { op, seconds: seconds(t0) });
  }
}

/** imsg_dispatch() under PROFILE_IMSG: `profile-imsg process=... from=... imsg=... seconds=...`. */
export function profileImsg(process: string, from: string, type: string, t0: bigint): void {
  emit('debug', null, 'bus', 'profile-imsg', { process, from, imsg: type, seconds: seconds(t0) });
}

function seconds(t0: bigint): string {
  const ns = process.hrtime.bigint() - t0;
  return `${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`;
}
