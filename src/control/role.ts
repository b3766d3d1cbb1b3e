/**
 * The control role: owns the admin socket `SPOOL/tsmtpd.sock` that tsmtpctl speaks to, and asks
 * the other roles over the bus for what each command needs.
 */
import { join } from 'node:path';
import type { Role } from '../bus/bus.js';
import type { RoleContext } from '../daemon/context.js';
import type { CommandEnv } from './commands.js';
import { allCommands } from './help.js';
import { ControlServer } from './server.js';

export const CONTROL_SOCKET = 'tsmtpd.sock';

export function createControlRole(ctx: RoleContext): Role<'control'> {
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
    peers: ['stat', 'lka', 'queue', 'scheduler', 'mta', 'mda', 'smtp'],
    handlers: {},
    start: () => server.listen(),
    stop: () => server.close(),
  };
}
