/**
 * How each role is built from a RoleContext, in one table that the one-process daemon (tests)
 * and each child process share, so both build the same roles the same way.
 */
import type { Role } from '../bus/bus.js';
import type { RoleName } from '../bus/messages.js';
import type { RoleContext } from './context.js';
import { createStatRole } from '../stat/role.js';
import { createMdaRole } from '../mda/role.js';
import { createSmtpRole } from '../smtp/role.js';
import { createControlRole } from '../control/role.js';
import { createLkaRole } from '../lka/role.js';
import { createQueueRole } from '../queue/role.js';
import { createSchedulerRole } from '../scheduler/role.js';
import { createSharedSchedulerRole } from '../scheduler/shared-role.js';
import { isSharedScheduler } from '../scheduler/registry.js';
import { createMtaRole } from '../mta/role.js';

/** `adopt`: the role serves connections the parent accepted, instead of binding its own sockets. */
export interface BuildOptions {
  adopt: boolean;
}

export type ChildRoleName = Exclude<RoleName, 'parent'>;

export function buildRole(name: ChildRoleName, ctx: RoleContext, o: BuildOptions): Role<RoleName> {
  switch (name) {
    case 'stat': return createStatRole(ctx) as Role<RoleName>;
    case 'lka': return createLkaRole(ctx) as Role<RoleName>;
    case 'scheduler':
      return (isSharedScheduler(ctx.backends.scheduler) ? createSharedSchedulerRole(ctx) : createSchedulerRole(ctx)) as Role<RoleName>;
    case 'mda': return createMdaRole(ctx) as Role<RoleName>;
    case 'mta': return createMtaRole(ctx) as Role<RoleName>;
    case 'queue': return createQueueRole(ctx) as Role<RoleName>;
    case 'control': return createControlRole(ctx, { adoptOnly: o.adopt }) as Role<RoleName>;
    case 'smtp':
      return createSmtpRole(ctx, { adoptOnly: o.adopt }) as Role<RoleName>;
  }
}
