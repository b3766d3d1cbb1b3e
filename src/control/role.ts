/**
 * The control role: owns the admin socket `SPOOL/tsmtpd.sock` that tsmtpctl speaks to, and asks
 * the other roles over the bus for what each command needs.
 */
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { Role } from '../bus/bus.js';
import { PEERS } from '../bus/messages.js';
import type { RoleContext } from '../daemon/context.js';
import type { CommandEnv } from './commands.js';
import { allCommands } from './help.js';
import { ControlServer, QUERY_COMMANDS, queueLinesOnly } from './server.js';

export const CONTROL_SOCKET = 'tsmtpd.sock';
/**
 * The socket any local user may use (mode 0666): it answers `show queue` alone, so that mailq
 * works for everyone, and turns every other command away as smtpctl does without root.
 */
export const QUERY_SOCKET = 'mailq.sock';

export interface ControlRole extends Role<'control'> {
  /** Serve a connection the parent accepted on the control socket (or, `query`, the mailq socket) it bound. */
  adopt(socket: Socket, query?: boolean): void;
}

export function createControlRole(ctx: RoleContext, opts: { adoptOnly?: boolean } = {}): ControlRole {
  const env: CommandEnv = {
    bus: ctx.bus,
    startedAt: ctx.clock.now(),
    now: () => ctx.clock.now(),
    traces: new Set(),
    profiles: new Set(),
  };
  const table = allCommands(env);
  const server = new ControlServer(join(ctx.spool, CONTROL_SOCKET), () => table, env);
  const query = new ControlServer(join(ctx.spool, QUERY_SOCKET), () => table, env, { only: QUERY_COMMANDS, mode: 0o666, project: queueLinesOnly });
  return {
    name: 'control',
    peers: PEERS.control,
    handlers: {},
    adopt: (s, isQuery) => (isQuery ? query : server).adopt(s),
    start: async () => {
      if (!opts.adoptOnly) await Promise.all([server.listen(), query.listen()]);
    },
    stop: async () => {
      await Promise.all([server.close(), query.close()]);
    },
  };
}
