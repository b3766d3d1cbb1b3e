/**
 * Every role in one process, on one in-process bus: what tests use to drive the whole daemon
 * with a fake clock. The real daemon (supervisor.ts) runs the same roles, built the same way, in
 * separate processes. Roles start in dependency order (the smtp listeners last, so nothing is
 * accepted before the queue and the lka can serve it) and stop in reverse (the listeners first,
 * so sessions get their 421 while the queue is still there to roll back their transactions).
 */
import { setTracing } from '../trace.js';
import { Bus, type Role } from '../bus/bus.js';
import type { RoleName } from '../bus/messages.js';
import { systemClock, type Clock } from '../clock.js';
import type { Config } from '../config/types.js';
import { configureLog, log } from '../log.js';
import type { SmtpRole } from '../smtp/role.js';
import type { BackendChoice } from './context.js';
import { createParentRole } from './parent-role.js';
import { buildRole, type ChildRoleName } from './roles.js';
import { findServerName } from './server-name.js';

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

/**
 * Start order: every role's peers are registered before any starts, and a role starts only once
 * those it sends work to are running — the queue after the scheduler and the delivery roles
 * (it hands them the stored envelopes at start), the listeners after everything they need.
 */
const ORDER: ChildRoleName[] = ['stat', 'lka', 'scheduler', 'mda', 'mta', 'queue', 'smtp', 'control'];

export class Daemon {
  readonly bus: Bus;
  readonly roles = new Map<RoleName, Role<RoleName>>();
  private started: Role<RoleName>[] = [];
  private stopping: Promise<void> | null = null;
  private readonly startedAt = Date.now();

  constructor(private readonly options: DaemonOptions) {
    this.bus = new Bus({ checkSerializable: options.checkBus });
    const serverName = options.serverName ?? findServerName();
    for (const name of ORDER) {
      const role = buildRole(name, {
        config: options.config,
        bus: this.bus.endpoint(name),
        clock: options.clock ?? systemClock,
        spool: options.spool,
        backends: options.backends,
        serverName,
        verbose: options.verbose,
      }, { adopt: false });
      this.bus.register(role);
      this.roles.set(name, role);
    }
    const smtp = this.roles.get('smtp') as SmtpRole;
    const parent = createParentRole({
      pause: (req) => smtp.admission.control(req),
      ban: (address, ms) => smtp.admission.ban(address, ms),
      status: () => [{ name: 'daemon', pid: process.pid, user: String(process.getuid?.() ?? ''), uptime: Math.floor((Date.now() - this.startedAt) / 1000), restarts: 0 }],
      logLevel: (verbose) => configureLog({ level: verbose ? 'debug' : 'info' }),
      tracing: (on, profiles) => setTracing(on, profiles),
    });
    this.bus.register(parent as Role<RoleName>);
    this.roles.set('parent', parent as Role<RoleName>);
  }

  async start(): Promise<void> {
    for (const role of [this.roles.get('parent')!, ...ORDER.map((n) => this.roles.get(n)!)]) {
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
