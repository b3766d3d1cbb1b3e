/**
 * The parent process of the daemon. As root it keeps root for what needs it and nothing else:
 * it reads the config and the keys, creates the system users, prepares the spool, binds every
 * listening socket, starts the role processes as their users (topology.ts), links them to each
 * other, restarts any that dies, and does local delivery as the recipient (the mda role runs
 * here). The smtp workers accept on the TCP sockets it binds (shared-listeners.ts) and ask it
 * to count each session in; the UNIX sockets it accepts on itself, without reading, and hands
 * each connection to the smtp worker with the fewest sessions, or to the control process.
 */
import { setTracing } from '../trace.js';
import { withoutQueueKey } from './queue-key.js';
import { fork, type ChildProcess } from 'node:child_process';
import { chmodSync, unlinkSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createServer, Socket, type Server } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bus, type Role } from '../bus/bus.js';
import { IpcLink } from '../bus/link.js';
import type { ProcessStatus, RoleName } from '../bus/messages.js';
import { systemClock } from '../clock.js';
import type { Config } from '../config/types.js';
import { CONTROL_SOCKET, QUERY_SOCKET } from '../control/role.js';
import { configureLog, log, logLevel, type Level } from '../log.js';
import { Admission } from '../smtp/admission.js';
import { openListener } from '../smtp/listener.js';
import { formatReply, REPLIES } from '../smtp/reply.js';
import { sessionLimits } from '../smtp/role.js';
import type { ChildInit, ChildMessage, ParentMessage } from './child.js';
import { reportLoopDelay } from './loop-delay.js';
import type { BackendChoice, RoleContext } from './context.js';
import { FilterHost, type FilterRequest } from './filter-host.js';
import { EMPTY_KEYRING, loadKeyring, type Keyring } from './keyring.js';
import { LinkBroker } from './link-broker.js';
import { bindShared, canShareListeners, type SharedSocket } from './shared-listeners.js';
import { leases } from '../smtp/worker-admission.js';
import { enqueueOffline, prepareOfflineDir } from './offline.js';
import { createParentRole } from './parent-role.js';
import { accounts, prepareQueueDirs, type Account, type Accounts } from './privileges.js';
import { buildRole } from './roles.js';
import { CHILD_KINDS, needsLink, PROCESS_ROLES, processUser, type ProcessKind } from './topology.js';

const CHILD_SCRIPT = fileURLToPath(new URL('./child.js', import.meta.url));
/** A process that dies this soon after starting is started again more slowly, up to the cap. */
const QUICK_DEATH_MS = 10_000;
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 10_000;
const START_TIMEOUT_MS = 60_000;
/**
 * A small young generation in the processes that see sessions (the parent, the smtp workers, the
 * lka; control too): the garbage of a turn (parsed commands, bus frames) is reclaimed before it
 * can grow the heap, so an idle session costs what it holds, not what it churned. 1 MiB: 1000
 * idle sessions then add 16 MB of PSS over the seven processes where 2 MiB made it 19 MB
 * (../shared/bench, issue 18). The parent sets it on itself at start (bin/tsmtpd.ts).
 */
export const V8_FLAGS = ['--max-semi-space-size=1'];

/**
 * The queue and the mta hold no session: their garbage is per message, and 1 MiB made them
 * scavenge so often that GC took 3.6 s of their time for 8000 messages from 20 sessions, against
 * 1.8 s with 8 MiB (CPU profiles); the daemon's CPU per message fell 7-12% in two interleaved
 * pairs, for 22 MB more RSS at start and none per idle session (bench/smtp-accept.js).
 */
function v8Flags(kind: ProcessKind): string[] {
  return kind === 'queue' || kind === 'mta' ? ['--max-semi-space-size=8'] : V8_FLAGS;
}

export interface SupervisorOptions {
  config: Config;
  spool: string;
  backends: BackendChoice;
  verbose: boolean;
  serverName: string;
  users: { unprivileged: string; queue: string };
  /** Copy payloads on the parent's own bus as a process boundary would (tests). */
  checkBus: boolean;
  timestamps: boolean;
  /** Lines carry a syslog priority for logger(1) (detached, logging to syslog). */
  syslog?: boolean;
}

interface Slot {
  kind: ProcessKind;
  name: string;
  account: Account;
  child: ChildProcess | null;
  state: 'starting' | 'built' | 'started' | 'dead';
  startedAt: number;
  restarts: number;
  backoffMs: number;
  /** Connections handed to this smtp worker and not yet ended. */
  conns: Set<number>;
  /** Places under the overall session cap this smtp worker holds to admit exempt clients itself. */
  leased: number;
  /** Called as the worker says it accepts on each shared socket (and when it dies before). */
  listening?: (all: boolean) => void;
  /** Settles the first start: the daemon is ready only when every process is. */
  firstStart?: { resolve(): void; reject(err: Error): void };
}

export class Supervisor {
  private readonly slots: Slot[] = [];
  private readonly bus: Bus;
  private readonly servers: Server[] = [];
  /** TCP listeners' sockets, bound here and accepted on by every smtp worker. */
  private readonly shared: SharedSocket[] = [];
  private readonly admission: Admission;
  private readonly conns = new Map<number, { address: string; slot: Slot }>();
  private connSeq = 0;
  private rr = 0;
  private broker: LinkBroker | null = null;
  private users: Accounts | null = null;
  private keys: Keyring = EMPTY_KEYRING;
  private filterHost: FilterHost | null = null;
  private parentRoles: Role<RoleName>[] = [];
  private stopping = false;

  /**
   * `smtp workers N`, else one per core but one: the queue, the lka and the mta need a core of
   * their own as much as the sessions do. On two cores one worker accepted 846-891 msg/s where
   * two accepted 741-752 (bench/smtp-accept.js, three rounds, issue 18).
   */
  private readonly workers: number;
  /** Whether workers may hold places under max-sessions (worker-admission.ts): not under a small cap. */
  private readonly leasing: boolean;

  constructor(private readonly o: SupervisorOptions) {
    this.bus = new Bus({ process: 'parent', checkSerializable: o.checkBus });
    this.admission = new Admission(sessionLimits({ config: o.config } as RoleContext));
    this.workers = o.config.smtp.workers || Math.max(1, availableParallelism() - 1);
    this.leasing = leases(o.config.smtp.maxSessions, this.workers);
  }

  async start(): Promise<void> {
    const { config, spool } = this.o;
    this.users = accounts(this.o.users);
    prepareQueueDirs(spool, this.users.queue);
    prepareOfflineDir(spool);
    this.keys = loadKeyring(config);
    this.broker = await LinkBroker.open();
    this.filterHost = new FilterHost(this.users.unprivileged, this.broker, (m, handle) => this.sendTo('lka', m, handle));
    await this.startParentRoles();
    const workers = this.workers;
    for (const kind of CHILD_KINDS) {
      const n = kind === 'smtp' ? workers : 1;
      for (let i = 1; i <= n; i++) {
        this.slots.push({
          kind, name: kind === 'smtp' ? `smtp.${i}` : kind, account: processUser(kind) === 'queue' ? this.users.queue : this.users.unprivileged,
          child: null, state: 'dead', startedAt: 0, restarts: 0, backoffMs: RESTART_MIN_MS, conns: new Set(), leased: 0,
        });
      }
    }
    await Promise.all(this.slots.map((slot) => new Promise<void>((resolve, reject) => {
      slot.firstStart = { resolve, reject };
      this.spawn(slot);
    })));
    await this.openSockets();
    reportLoopDelay(this.bus, 'parent', 'parent');
    log('info', null, 'daemon', 'ready', { spool, processes: this.slots.length + 1, workers });
    // what sendmail kept while the daemon was down goes in now, through the socket just opened
    void enqueueOffline(spool);
  }

  /** The mda and the parent's own role live here, on a bus linked to every child by its IPC channel. */
  private async startParentRoles(): Promise<void> {
    const ctx = {
      config: this.o.config, clock: systemClock, spool: this.o.spool, backends: this.o.backends,
      serverName: this.o.serverName, verbose: this.o.verbose,
    };
    const parent = createParentRole({
      pause: (req) => {
        const res = this.admission.control(req);
        if (res.changed) this.toWorkers({ t: 'pause', paused: res.paused });
        return res;
      },
      ban: (address, ms) => {
        this.admission.ban(address, ms);
        this.toWorkers({ t: 'ban', address, ms });
      },
      status: () => this.status(),
      logLevel: (verbose) => this.setLogLevel(verbose ? 'debug' : 'info'),
      tracing: (on, profiles) => this.setTracing(on, profiles),
    }) as Role<RoleName>;
    const mda = buildRole('mda', { ...ctx, bus: this.bus.endpoint('mda') }, { adopt: true });
    this.parentRoles = [parent, mda];
    for (const role of this.parentRoles) {
      this.bus.register(role);
      await role.start();
    }
  }

  private spawn(slot: Slot): void {
    const child = fork(CHILD_SCRIPT, [], {
      env: { ...process.env, TSMTPD_PROCESS_KIND: slot.kind, TSMTPD_PROCESS_NAME: slot.name },
      serialization: 'advanced',
      execArgv: [...process.execArgv, ...v8Flags(slot.kind)],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      ...(process.getuid?.() === 0 ? { uid: slot.account.uid, gid: slot.account.gid } : {}),
    });
    slot.child = child;
    slot.state = 'starting';
    slot.startedAt = Date.now();
    this.bus.attach(new IpcLink(slot.name, child), PROCESS_ROLES[slot.kind]);
    child.on('message', (m: ChildMessage | FilterRequest | { bus: unknown }) => this.onChild(slot, m));
    child.on('error', (err) => log('error', null, 'daemon', 'process-exit', { process: slot.name, error: err.message }));
    child.on('exit', (code, signal) => this.exited(slot, child, code, signal));
    const timer = setTimeout(() => {
      if (slot.state !== 'started' && slot.child === child) child.kill('SIGKILL');
    }, START_TIMEOUT_MS);
    timer.unref();
    child.send({ t: 'init', init: this.initFor(slot) } satisfies ParentMessage);
    log('info', null, 'daemon', 'process-start', { process: slot.name, pid: child.pid, user: slot.account.name });
  }

  private initFor(slot: Slot): ChildInit {
    // only the processes that terminate or originate TLS hold certificates and keys
    const keys = slot.kind === 'smtp' || slot.kind === 'mta' ? this.keys : undefined;
    return {
      config: slot.kind === 'queue' ? this.o.config : withoutQueueKey(this.o.config), spool: this.o.spool, backends: this.o.backends, serverName: this.o.serverName,
      verbose: this.o.verbose, checkBus: this.o.checkBus, ...(keys ? { keys } : {}),
      log: { level: logLevel(), timestamps: this.o.timestamps, syslog: this.o.syslog ?? false, tracing: this.tracing },
    };
  }

  private onChild(slot: Slot, m: ChildMessage | FilterRequest | { bus: unknown }): void {
    if ('bus' in m) return;
    switch (m.t) {
      case 'built': {
        // the peers running now; one that builds later links itself with this one
        const peers = this.slots.filter((p) => p !== slot && (p.state === 'built' || p.state === 'started') && needsLink(slot.kind, p.kind));
        slot.state = 'built';
        return void this.link(slot, peers);
      }
      case 'started':
        // a worker started again after the first start: it accepts where the others do
        if (slot.kind === 'smtp') void this.share(slot);
        slot.state = 'started';
        slot.firstStart?.resolve();
        delete slot.firstStart;
        return;
      case 'fatal':
        return void slot.firstStart?.reject(new Error(`${slot.name}: ${m.error}`));
      case 'closed':
        return this.release(m.id);
      case 'listening':
        return slot.listening?.(false);
      case 'admit':
        return this.admit(slot, m.id, m.address);
      case 'lease': {
        const n = this.leasing ? this.admission.reserve(m.n) : 0;
        slot.leased += n;
        return this.send(slot, { t: 'leased', n });
      }
      case 'unlease': {
        const n = Math.min(m.n, slot.leased);
        slot.leased -= n;
        return this.admission.unreserve(n);
      }
      case 'filter-spawn':
      case 'filter-kill':
        if (slot.kind === 'lka') this.filterHost?.handle(m);
        return;
    }
  }

  /** Link a process that has built its roles with the running processes it talks to. */
  private async link(slot: Slot, peers: Slot[]): Promise<void> {
    const child = slot.child;
    for (const peer of peers) {
      const [a, b] = await this.broker!.pair();
      if (slot.child !== child) return void (a.destroy(), b.destroy());
      this.send(slot, { t: 'link', remote: peer.name, roles: [...PROCESS_ROLES[peer.kind]] }, a);
      this.send(peer, { t: 'link', remote: slot.name, roles: [...PROCESS_ROLES[slot.kind]] }, b);
    }
  }

  /** `handle`: a connection or link socket, which goes with the message, or a shared listening socket, which stays ours too. */
  private send(slot: Slot, m: ParentMessage, handle?: Socket | SharedSocket['handle']): void {
    const drop = () => void (handle instanceof Socket && handle.destroy());
    const child = slot.child;
    if (!child?.connected) return drop();
    child.send(m, handle as Socket | undefined, {}, (err) => {
      if (err) drop();
    });
  }

  /**
   * Give a worker the listening sockets, then what admits nobody: a pause, the bans in force.
   * Settles when it accepts on all of them (a socket that is bound accepts nobody until then).
   */
  private share(slot: Slot): Promise<void> {
    return new Promise((resolve) => {
      let left = this.shared.length;
      if (left === 0) return resolve();
      slot.listening = (all) => {
        if (!all && --left > 0) return;
        delete slot.listening;
        resolve();
      };
      for (const s of this.shared) this.send(slot, { t: 'listen', listener: s.listener }, s.handle);
      if (this.admission.paused) this.send(slot, { t: 'pause', paused: true });
      for (const [address, ms] of this.admission.bansLeft()) this.send(slot, { t: 'ban', address, ms });
    });
  }

  private toWorkers(m: ParentMessage): void {
    for (const slot of this.slots) if (slot.kind === 'smtp' && slot.state === 'started') this.send(slot, m);
  }

  private sendTo(kind: ProcessKind, m: ParentMessage, handle?: unknown): void {
    const slot = this.slots.find((s) => s.kind === kind && s.state !== 'dead');
    if (slot) this.send(slot, m, handle as Socket | undefined);
  }

  private exited(slot: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (slot.child !== child) return;
    slot.child = null;
    slot.state = 'dead';
    for (const id of slot.conns) this.release(id);
    this.admission.unreserve(slot.leased);
    slot.leased = 0;
    slot.listening?.(true);
    if (slot.kind === 'lka') this.filterHost?.killAll();
    if (this.stopping) return;
    log('warn', null, 'daemon', 'process-exit', { process: slot.name, pid: child.pid, code: code ?? undefined, signal: signal ?? undefined });
    if (slot.firstStart) {
      slot.firstStart.reject(new Error(`${slot.name} exited during start (${signal ?? `code ${code}`})`));
      delete slot.firstStart;
      return;
    }
    // a process that keeps dying at once is restarted ever more slowly, not in a tight loop
    slot.backoffMs = Date.now() - slot.startedAt < QUICK_DEATH_MS ? Math.min(slot.backoffMs * 2, RESTART_MAX_MS) : RESTART_MIN_MS;
    setTimeout(() => {
      if (this.stopping) return;
      slot.restarts++;
      this.spawn(slot);
    }, slot.backoffMs);
  }

  /** Every listener and the control socket, bound here (ports below 1024, the root-owned spool). */
  private async openSockets(): Promise<void> {
    const { config, spool } = this.o;
    const share = canShareListeners();
    for (const [index, listener] of config.listeners.entries()) {
      if (share && listener.kind !== 'socket') {
        const bound = bindShared(listener, index);
        this.shared.push(...bound);
        for (const b of bound) log('info', null, 'smtp', 'listen', { address: b.address, port: b.port });
        continue;
      }
      const opened = await openListener(listener, spool, (s) => this.accept(s, index), { pauseOnConnect: true });
      this.servers.push(...opened);
      for (const s of opened) {
        const a = s.address();
        log('info', null, 'smtp', 'listen', typeof a === 'string' || a === null ? { path: a } : { address: a.address, port: a.port });
      }
    }
    await Promise.all(this.slots.filter((slot) => slot.kind === 'smtp' && slot.state === 'started').map((slot) => this.share(slot)));
    // root and the daemon's user only; the mailq socket is anyone's, for the one command it answers
    await this.openControlSocket(join(spool, CONTROL_SOCKET), 0o600, false);
    await this.openControlSocket(join(spool, QUERY_SOCKET), 0o666, true);
  }

  private async openControlSocket(path: string, mode: number, query: boolean): Promise<void> {
    try {
      unlinkSync(path); // left by a daemon that died; the spool's pid lock says none runs now
    } catch {
      // none
    }
    const control = createServer({ pauseOnConnect: true }, (s) => this.sendTo('control', { t: 'control-conn', query }, s));
    await new Promise<void>((resolve, reject) => {
      control.once('error', reject);
      control.listen(path, () => resolve());
    });
    chmodSync(path, mode);
    this.servers.push(control);
  }

  /** A new connection: admitted (or refused with its 421), then handed to the least busy smtp worker. */
  private accept(socket: Socket, index: number): void {
    socket.on('error', () => undefined);
    const address = this.o.config.listeners[index]!.kind === 'socket' ? 'local' : (socket.remoteAddress ?? '');
    const workers = this.slots.filter((s) => s.kind === 'smtp' && s.state === 'started');
    const refused = workers.length === 0 ? REPLIES.paused : this.admission.admit(address);
    if (refused) {
      // an SMTPS client understands the 421 only over TLS: a worker, which holds the keys, says it
      if (this.o.config.listeners[index]!.tls !== 'smtps') return void socket.end(formatReply(refused));
      if (workers.length === 0) return void socket.destroy();
      return this.send(workers[this.rr++ % workers.length]!, { t: 'refuse', listener: index, reply: refused }, socket);
    }
    // fewest sessions first; ties taken in turn, so a burst spreads over every worker
    const least = Math.min(...workers.map((w) => w.conns.size));
    const tied = workers.filter((w) => w.conns.size === least);
    const slot = tied[this.rr++ % tied.length]!;
    const id = ++this.connSeq;
    this.conns.set(id, { address, slot });
    slot.conns.add(id);
    this.send(slot, { t: 'conn', listener: index, id }, socket);
  }

  /** A worker accepted a connection from `address`: count it in, or tell the worker its 421. */
  private admit(slot: Slot, id: number, address: string): void {
    const refused = this.admission.admit(address);
    if (refused) return this.send(slot, { t: 'admitted', id, reply: refused });
    const conn = ++this.connSeq;
    this.conns.set(conn, { address, slot });
    slot.conns.add(conn);
    this.send(slot, { t: 'admitted', id, conn });
  }

  private release(id: number): void {
    const c = this.conns.get(id);
    if (!c) return;
    this.conns.delete(id);
    c.slot.conns.delete(id);
    this.admission.release(c.address);
  }

  /** Kept, so a process started later (a restart) traces what the others do. */
  private tracing: { on: string[]; profiles: string[] } = { on: [], profiles: [] };

  private setTracing(on: string[], profiles: string[]): void {
    this.tracing = { on, profiles };
    setTracing(on, profiles);
    for (const slot of this.slots) this.send(slot, { t: 'trace', on, profiles });
  }

  private setLogLevel(level: Level): void {
    configureLog({ level });
    for (const slot of this.slots) this.send(slot, { t: 'log', level });
  }

  private status(): ProcessStatus[] {
    const now = Date.now();
    const me: ProcessStatus = { name: 'parent', pid: process.pid, user: process.getuid?.() === 0 ? 'root' : String(process.getuid?.()), uptime: Math.floor(process.uptime()), restarts: 0 };
    return [me, ...this.slots.filter((s) => s.child).map((s) => ({
      name: s.name, pid: s.child!.pid ?? 0, user: s.account.name, uptime: Math.floor((now - s.startedAt) / 1000), restarts: s.restarts,
    }))];
  }

  /** Listeners first, then every child asked to stop and given until the deadline, then the parent's roles. */
  async stop(deadlineMs: number): Promise<void> {
    this.stopping = true;
    for (const s of this.servers.splice(0)) s.close();
    for (const s of this.shared.splice(0)) s.handle.close();
    const exits = this.slots.filter((s) => s.child).map((s) => new Promise<void>((resolve) => {
      s.child!.once('exit', () => resolve());
      this.send(s, { t: 'stop' });
    }));
    const timer = setTimeout(() => {
      for (const s of this.slots) s.child?.kill('SIGKILL');
    }, deadlineMs);
    await Promise.all(exits);
    clearTimeout(timer);
    for (const role of [...this.parentRoles].reverse()) await role.stop().catch(() => undefined);
    this.broker?.close();
  }
}
