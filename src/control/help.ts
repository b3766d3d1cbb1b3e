/**
 * Every control command as one table (the daemon answers them) and their synopses for
 * `tsmtpctl help`, with the commands tsmtpctl answers by itself.
 */
import { baseCommands, TRACE_WORDS, type CommandEnv, type ControlCommand } from './commands.js';
import { mtaCommands } from './mta-commands.js';
import { queueCommands } from './queue-commands.js';

export function allCommands(env: CommandEnv): ControlCommand[] {
  return [...baseCommands(env), ...queueCommands(), ...mtaCommands()];
}

/** Commands that need no daemon, answered by tsmtpctl itself. */
const CLIENT_COMMANDS = ['encrypt [string]', 'spf walk', 'help'];

/** One line per command, sorted: `show queue [msgid]`, `trace <subsystem>`... */
export function commandSynopses(): string[] {
  // the handlers are never called here: the table is read for its words only
  const env = { traces: new Set(), profiles: new Set() } as unknown as CommandEnv;
  const daemon = allCommands(env).map((c) => [...c.words, c.args.names].join(' ').trim());
  return [...new Set([...daemon, ...CLIENT_COMMANDS])].sort();
}

export const SUBSYSTEMS_LINE = `trace/untrace subsystems: ${TRACE_WORDS.join(', ')}`;
