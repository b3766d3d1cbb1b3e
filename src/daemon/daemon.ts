/**
 * The daemon: builds every role from the config, registers them on the bus, starts them in
 * dependency order (the smtp listeners last, so nothing is accepted before the queue and the
 * lka can serve it) and stops them in reverse (the listeners first, so sessions get their 421
 * while the queue is still there to roll back their transactions).
 */
import { Bus, type Role } from '../bus/bus.js';
import type { RoleName } from '../bus/messages.js';
import { systemClock, type Clock } from '../clock.js';
import type { Config } from '../config/types.js';
import { log } from '../log.js';
import type { BackendChoice, RoleContext } from './context.js';
import { findServerName } from './server-name.js';
import { createStatRole } from '../stat/role.js';
import { createMdaRole } from '../mda/role.js';
import { createSmtpRole } from '../smtp/role.js';
import { createControlRole } from '../control/role.js';
import { createLkaRole } from '../lka/role.js';
import { createQueueRole } from '../queue/role.js';
import { createSchedulerRole } from '../scheduler/role.js';
import { createMtaRole } from '../mta/role.js';

export interface DaemonOptions {
  config: Config;
  spool: string;
  backends: BackendChoice;
  verbose: boolean;
  clock?: Clock;
  serverName?: string;
  /** Pass payloads through structuredClone as a process boundary would (tests). */
  checkBus?: boolean;
}

type RoleFactory = (ctx: RoleContext) => Role<RoleName>;

/**
 * Start order: every role's peers are registered before any starts, and a role starts only once
 * those it sends work to are running — the queue after the scheduler and the delivery roles
 * (it hands them the stored envelopes at start), the listeners after everything they need.
 */
const FACTORIES: [RoleName, RoleFactory][] = [
  ['stat', createStatRole as RoleFactory],
  ['lka', ((ctx: RoleContext) => createLkaRole(ctx)) as RoleFactory],
  ['scheduler', createSchedulerRole as RoleFactory],
  ['mda', ((ctx: RoleContext) => createMdaRole(ctx)) as RoleFactory],
  ['mta', ((ctx: RoleContext) => createMtaRole(ctx)) as RoleFactory],
  ['queue', createQueueRole as RoleFactory],
  ['smtp', createSmtpRole as RoleFactory],
  ['control', createControlRole as RoleFactory],
];

export class Daemon {
  readonly bus: Bus;
  readonly roles = new Map<RoleName, Role<RoleName>>();
  private started: Role<RoleName>[] = [];
  private stopping: Promise<void> | null = null;

  constructor(private readonly options: DaemonOptions) {
    this.bus = new Bus({ checkSerializable: options.checkBus });
    const serverName = options.serverName ?? findServerName();
    for (const [name, factory] of FACTORIES) {
      const role = factory({
        config: options.config,
        bus: this.bus.endpoint(name),
        clock: options.clock ?? systemClock,
        spool: options.spool,
        backends: options.backends,
        serverName,
        verbose: options.verbose,
      });
      this.bus.register(role);
      this.roles.set(name, role);
    }
  }

  async start(): Promise<void> {
    for (const role of this.roles.values()) {
      try {
        await role.start();
      } catch (err) {
        log('error', null, role.name, 'fatal', { error: (err as Error).message });
        await this.stop();
        throw err;
      }
      this.started.push(role);
    }
    log('info', null, 'daemon', 'ready', { spool: this.options.spool, roles: this.started.length });
  }

  /** Stop every started role in reverse order; safe to call more than once. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      for (const role of [...this.started].reverse()) {
        try {
          await role.stop();
        } catch (err) {
          log('warn', null, role.name, 'shutdown', { error: (err as Error).message });
        }
      }
      this.started = [];
    })();
    return this.stopping;
  }
}
