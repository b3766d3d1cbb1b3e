/**
 * The entry point of every role process the parent starts (supervisor.ts): it waits for its
 * init (config, keys it may hold, log settings), builds its roles on a bus whose links the
 * parent hands it, starts them, and serves what the parent passes on — connections for smtp
 * workers and control, filter pipes for the lka. It exits when the parent says so, or when the
 * parent is gone; an uncaught error ends this process only, and the parent starts a new one.
 */
import { setTracing } from '../trace.js';
import type { Socket } from 'node:net';
import { Bus, type Role } from '../bus/bus.js';
import { IpcLink, SocketLink } from '../bus/link.js';
import { PEERS, type RoleName } from '../bus/messages.js';
import { systemClock } from '../clock.js';
import type { ControlRole } from '../control/role.js';
import { configureLog, flushLog, log, type Level } from '../log.js';
import type { Reply } from '../smtp/reply.js';
import { sessionLimits, type SmtpRole } from '../smtp/role.js';
import { WorkerAdmission, type ParentLink } from '../smtp/worker-admission.js';
import type { BackendChoice, RoleContext } from './context.js';
import { EXIT } from './cli.js';
import { FilterProxy } from './filter-proxy.js';
import type { FilterReply } from './filter-host.js';
import type { Keyring } from './keyring.js';
import { reportLoopDelay } from './loop-delay.js';
import { buildRole, type ChildRoleName } from './roles.js';
import { PROCESS_ROLES, type ProcessKind } from './topology.js';
import type { Config } from '../config/types.js';

export interface ChildInit {
  config: Config;
  spool: string;
  backends: BackendChoice;
  serverName: string;
  verbose: boolean;
  checkBus: boolean;
  keys?: Keyring;
  log: { level: Level; timestamps: boolean; syslog: boolean; tracing: { on: string[]; profiles: string[] } };
}

/** What the parent sends a child besides bus traffic. */
export type ParentMessage =
  | { t: 'init'; init: ChildInit }
  | { t: 'link'; remote: string; roles: RoleName[] }
  | { t: 'conn'; listener: number; id: number }
  /** A connection turned away (paused, over a cap, banned): the worker gives it `reply`, over TLS where it must. */
  | { t: 'refuse'; listener: number; reply: Reply }
  /** With the handle of a socket the parent bound for listener `listener`: accept on it (shared-listeners.ts). */
  | { t: 'listen'; listener: number }
  /** The answer to `admit` `id`: the session's number in the parent's count, or its 421. */
  | { t: 'admitted'; id: number; conn?: number; reply?: Reply }
  /** Places under the overall session cap this worker may fill itself (worker-admission.ts). */
  | { t: 'leased'; n: number }
  | { t: 'pause'; paused: boolean }
  | { t: 'ban'; address: string; ms: number }
  /** `query`: from the mailq socket, which answers `show queue` alone. */
  | { t: 'control-conn'; query: boolean }
  | { t: 'log'; level: Level }
  | { t: 'trace'; on: string[]; profiles: string[] }
  | { t: 'stop' }
  | FilterReply;

/** What a child tells the parent besides bus traffic. */
export type ChildMessage =
  | { t: 'built' }
  | { t: 'started' }
  | { t: 'fatal'; error: string }
  | { t: 'closed'; id: number }
  /** A connection this worker accepted: may it be served? */
  | { t: 'admit'; id: number; address: string }
  | { t: 'lease'; n: number }
  | { t: 'unlease'; n: number }
  /** This worker accepts on a socket `listen` gave it. */
  | { t: 'listening' };

const kind = process.env['TSMTPD_PROCESS_KIND'] as ProcessKind;
const name = process.env['TSMTPD_PROCESS_NAME'] ?? kind;

const roles: Role<RoleName>[] = [];
let bus: Bus | null = null;
let filters: FilterProxy | null = null;
let stopping = false;

function tell(m: ChildMessage): void {
  if (process.connected) process.send!(m);
}

/** Connections waiting for the parent's count, by request. */
const admitting = new Map<number, (m: Extract<ParentMessage, { t: 'admitted' }>) => void>();
let admitSeq = 0;

const parentLink: ParentLink = {
  admit(address) {
    const id = ++admitSeq;
    return new Promise((resolve) => {
      admitting.set(id, resolve);
      tell({ t: 'admit', id, address });
    });
  },
  closed: (id) => tell({ t: 'closed', id }),
  lease: (n) => tell({ t: 'lease', n }),
  unlease: (n) => tell({ t: 'unlease', n }),
};
/** An smtp worker's: who may open a session on the sockets the parent shares with it. */
let admission: WorkerAdmission | null = null;

function die(err: unknown): never {
  log('error', null, kind, 'fatal', { process: name, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  flushLog();
  tell({ t: 'fatal', error: err instanceof Error ? err.message : String(err) });
  process.exit(EXIT.FATAL);
}

async function init(i: ChildInit): Promise<void> {
  configureLog({ level: i.log.level, timestamps: i.log.timestamps, syslog: i.log.syslog });
  setTracing(i.log.tracing.on, i.log.tracing.profiles);
  bus = new Bus({ process: name, checkSerializable: i.checkBus });
  bus.attach(new IpcLink('parent', process), PROCESS_ROLES.parent);
  if (kind === 'lka') filters = new FilterProxy((m) => process.send!(m));
  if (kind === 'smtp') admission = new WorkerAdmission(sessionLimits({ config: i.config }), parentLink);
  const ctx: Omit<RoleContext, 'bus'> = {
    config: i.config, clock: systemClock, spool: i.spool, backends: i.backends, serverName: i.serverName,
    verbose: i.verbose, ...(i.keys ? { keys: i.keys } : {}), ...(filters ? { spawnFilter: filters.spawner } : {}),
  };
  for (const r of PROCESS_ROLES[kind] as ChildRoleName[]) {
    const role = buildRole(r, { ...ctx, bus: bus.endpoint(r) }, { adopt: true });
    bus.register(role);
    roles.push(role);
  }
  // a process that went away (a worker, the lka...) leaves nothing owned behind in ours
  bus.onPeerDown((peer) => {
    for (const role of roles) (role as { peerDown?: (p: string) => void }).peerDown?.(peer);
  });
  tell({ t: 'built' });
  for (const role of roles) await role.start();
  reportLoopDelay(bus, roles.find((r) => PEERS[r.name].includes('stat'))!.name, name);
  tell({ t: 'started' });
}

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  for (const role of [...roles].reverse()) {
    try {
      await role.stop();
    } catch (err) {
      log('warn', null, role.name, 'shutdown', { error: (err as Error).message });
    }
  }
  flushLog();
  process.exit(EXIT.OK);
}

function onMessage(m: ParentMessage | { bus: unknown }, handle: unknown): void {
  if ('bus' in m) return; // the IPC link reads these
  switch (m.t) {
    case 'init':
      return void init(m.init).catch(die);
    case 'link':
      return bus?.attach(new SocketLink(m.remote, handle as Socket), m.roles);
    case 'conn':
      return (roles[0] as SmtpRole).adopt(handle as Socket, m.listener, () => tell({ t: 'closed', id: m.id }));
    case 'refuse':
      return (roles[0] as SmtpRole).refuse(handle as Socket, m.listener, m.reply);
    case 'listen':
      return void (roles[0] as SmtpRole).acceptOn(handle, m.listener, (address) => admission!.admit(address)).then(() => tell({ t: 'listening' }));
    case 'admitted':
      admitting.get(m.id)?.(m);
      return void admitting.delete(m.id);
    case 'leased':
      return admission?.leased(m.n);
    case 'pause':
      return admission?.pause(m.paused);
    case 'ban':
      return admission?.ban(m.address, m.ms);
    case 'control-conn':
      return (roles.find((r) => r.name === 'control') as ControlRole).adopt(handle as Socket, m.query);
    case 'log':
      return configureLog({ level: m.level });
    case 'trace':
      return setTracing(m.on, m.profiles);
    case 'stop':
      return void stop();
    default:
      return filters?.receive(m, handle);
  }
}

process.on('message', onMessage);
// the parent is gone (killed, crashed): nothing may run without it
process.on('disconnect', () => void stop());
// a terminal's ^C reaches the whole process group; the parent decides and tells us
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => void stop());
process.on('uncaughtException', die);
process.on('unhandledRejection', die);
