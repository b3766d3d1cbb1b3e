/**
 * The control commands the daemon answers, as a table: the words of the command (smtpctl's),
 * whether it changes state (write commands need the control socket, which only root and the
 * daemon's user can open), and what it does. Words may be abbreviated to any unique prefix.
 */
import type { Endpoint } from '../bus/bus.js';
import { PROFILE_SUBSYSTEMS, TRACE_SUBSYSTEMS } from '../trace.js';

export interface CommandEnv {
  bus: Endpoint;
  startedAt: number;
  now(): number;
  /** Trace and profile subsystems switched on by the admin. */
  traces: Set<string>;
  profiles: Set<string>;
}

export interface ControlCommand {
  words: string[];
  /** Arguments after the words: how many are required and allowed. */
  args: { min: number; max: number; names: string };
  /** Its data, or an async iterable of parts for a listing that grows with the queue (sent as they come). */
  handler(env: CommandEnv, args: string[]): Promise<unknown> | AsyncIterable<unknown>;
}

/** smtpctl's str_to_trace() words; `all` is every subsystem (~TRACE_DEBUG). */
export const TRACE_WORDS = [...TRACE_SUBSYSTEMS, 'all'];

function pauseSmtp(paused: boolean) {
  return async (env: CommandEnv) => {
    const res = await env.bus.request('control.smtp.pause', { paused });
    return { text: res.changed ? `command succeeded\n` : `smtp is already ${paused ? 'paused' : 'running'}\n` };
  };
}

/** Every process logs on its own: the parent passes the level on to each of them. */
function logLevel(verbose: boolean) {
  return async (env: CommandEnv) => {
    await env.bus.request('control.log.level', { verbose });
    return { verbose };
  };
}

async function stats(env: CommandEnv) {
  const { stats } = await env.bus.request('control.stat.list', {});
  const uptime = Math.floor((env.now() - env.startedAt) / 1000);
  return { uptime, stats };
}

/** The set changes here, then the parent passes the whole state to every process (IMSG_CTL_TRACE_*). */
function toggle(which: 'traces' | 'profiles', on: boolean) {
  const allowed: readonly string[] = which === 'traces' ? TRACE_WORDS : PROFILE_SUBSYSTEMS;
  return async (env: CommandEnv, [sub]: string[]) => {
    if (!allowed.includes(sub!)) throw new Error(`invalid ${which === 'traces' ? 'trace' : 'profile'} keyword: ${sub}`);
    const set = env[which];
    for (const s of sub === 'all' ? TRACE_SUBSYSTEMS : [sub!]) (on ? set.add(s) : set.delete(s));
    await env.bus.request('control.trace.set', { tracing: [...env.traces], profiling: [...env.profiles] });
    return { [sub!]: on };
  };
}

async function updateTable(env: CommandEnv, [name]: string[]) {
  const res = await env.bus.request('control.table.update', { name: name! });
  if (res.result !== 'ok') throw new Error(`update table ${name} failed: ${res.error}`);
  return { text: 'command succeeded\n' };
}

export function baseCommands(env: CommandEnv): ControlCommand[] {
  return [
    { words: ['show', 'stats'], args: { min: 0, max: 0, names: '' }, handler: stats },
    { words: ['pause', 'smtp'], args: { min: 0, max: 0, names: '' }, handler: pauseSmtp(true) },
    { words: ['resume', 'smtp'], args: { min: 0, max: 0, names: '' }, handler: pauseSmtp(false) },
    { words: ['update', 'table'], args: { min: 1, max: 1, names: '<name>' }, handler: updateTable },
    { words: ['monitor'], args: { min: 0, max: 0, names: '' }, handler: stats },
    { words: ['log', 'brief'], args: { min: 0, max: 0, names: '' }, handler: logLevel(false) },
    { words: ['log', 'verbose'], args: { min: 0, max: 0, names: '' }, handler: logLevel(true) },
    { words: ['trace'], args: { min: 1, max: 1, names: '<subsystem>' }, handler: toggle('traces', true) },
    { words: ['untrace'], args: { min: 1, max: 1, names: '<subsystem>' }, handler: toggle('traces', false) },
    { words: ['profile'], args: { min: 1, max: 1, names: 'queue|imsg' }, handler: toggle('profiles', true) },
    { words: ['unprofile'], args: { min: 1, max: 1, names: 'queue|imsg' }, handler: toggle('profiles', false) },
  ];
}

/**
 * Find the command the words name, each word matched by unique prefix among the candidates
 * still standing (`sh st` is `show stats`); returns the command and the remaining arguments.
 */
export function resolveCommand(
  table: ControlCommand[],
  words: string[],
): { command: ControlCommand; args: string[] } | { error: string } {
  let candidates = table;
  let depth = 0;
  for (; depth < words.length; depth++) {
    const word = words[depth]!.toLowerCase();
    const withWord = candidates.filter((c) => depth < c.words.length);
    if (withWord.length === 0) break;
    const exact = withWord.filter((c) => c.words[depth] === word);
    const prefixed = exact.length > 0 ? exact : withWord.filter((c) => c.words[depth]!.startsWith(word));
    const distinct = new Set(prefixed.map((c) => c.words[depth]));
    if (distinct.size === 0) return { error: `unknown command: ${words.slice(0, depth + 1).join(' ')}` };
    if (distinct.size > 1) return { error: `ambiguous command: ${words.slice(0, depth + 1).join(' ')} (${[...distinct].join(', ')})` };
    candidates = prefixed;
  }
  const complete = candidates.filter((c) => c.words.length === depth);
  if (complete.length !== 1) return { error: `incomplete command: ${words.join(' ') || '(none)'}` };
  const command = complete[0]!;
  const args = words.slice(depth);
  if (args.length < command.args.min || args.length > command.args.max) {
    return { error: `usage: ${[...command.words, command.args.names].join(' ').trim()}` };
  }
  return { command, args };
}
