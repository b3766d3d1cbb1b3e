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
import { ControlServer } from './server.js';

export const CONTROL_SOCKET = 'tsmtpd.sock';

export interface ControlRole extends Role<'control'> {
  /** Serve a connection the parent accepted on the control socket it bound. */
  adopt(socket: Socket): void;
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
  return {
    name: 'control',
    peers: PEERS.control,
    handlers: {},
    adopt: (s) => server.adopt(s),
    start: async () => {
      if (!opts.adoptOnly) await server.listen();
    },
    stop: () => server.close(),
  };
}
