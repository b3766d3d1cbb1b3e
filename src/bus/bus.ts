/**
 * The bus the roles talk over. Roles of this process are registered here; roles of other
 * processes are reached over links (link.ts) that the parent hands out. Either way a role may
 * only message the peers the catalog gives it, every request has a timeout, and a handler never
 * runs inside its caller's stack. Messages from a link are checked again on arrival: the sending
 * role must live in the process at the other end, and must be allowed to send that type.
 */
import { BusError } from '../errors.js';
import { log } from '../log.js';
import { profileImsg, profilingOn, trace } from '../trace.js';
import type { Link } from './link.js';
import { isStatType, StatCoalescer } from './stat-coalescer.js';
import {
  DEFAULT_TIMEOUT_MS, PEERS, ROUTES, TIMEOUTS,
  type Handlers, type MessageType, type Origin, type Req, type Res, type RoleName,
} from './messages.js';

/** What every role is: a name, the peers it may message, its handlers, and a lifecycle. */
export interface Role<R extends RoleName = RoleName> {
  readonly name: R;
  readonly peers: readonly RoleName[];
  readonly handlers: Handlers<R>;
  start(): Promise<void>;
  /** Stop taking work and release resources; called in reverse start order. */
  stop(): Promise<void>;
}

type AnyHandler = (req: unknown, from: RoleName, origin: Origin) => unknown;

interface Registered {
  peers: ReadonlySet<RoleName>;
  handlers: Record<string, AnyHandler>;
}

/** A message on a link: a request, its response, or a notification. */
type Wire =
  | { k: 'q'; id: number; type: MessageType; from: RoleName; p: unknown }
  | { k: 'r'; id: number; ok: true; p: unknown }
  | { k: 'r'; id: number; ok: false; e: string }
  | { k: 'n'; type: MessageType; from: RoleName; p: unknown };

interface Remote {
  link: Link;
  roles: ReadonlySet<RoleName>;
  pending: Map<number, { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }>;
  /** Notifications that ride with the next message to this process (see DEFERRED). */
  deferred: Extract<Wire, { k: 'n' }>[];
  deferTimer: NodeJS.Timeout | null;
}

/**
 * Notifications nothing waits on, which leave with the next message to their process or after
 * DEFER_MS: a session's end then reaches the lka with the next session's start, one wake-up of
 * it instead of two for a client that sends one message per connection.
 */
const DEFERRED: ReadonlySet<MessageType> = new Set(['smtp.session.close']);
const DEFER_MS = 100;

export interface BusOptions {
  /** Pass local payloads through structuredClone, as a process boundary copies them (tests). */
  checkSerializable?: boolean;
  /** This process's name in origins (`lka`, `smtp.1`...). */
  process?: string;
  /** Shorter request timeouts than the catalog's, per type (tests). */
  timeouts?: Partial<Record<MessageType, number>>;
}

export class Bus {
  private readonly roles = new Map<RoleName, Registered>();
  private readonly remotes = new Map<string, Remote>();
  /** Requests for a role whose process is not linked yet (starting, restarting). */
  private readonly waiting = new Map<RoleName, Set<() => void>>();
  private readonly downHandlers: ((process: string) => void)[] = [];
  private nextId = 1;
  readonly process: string;
  private readonly stats = new StatCoalescer((n) => this.send(n.from, n.type, n.req));

  constructor(private readonly options: BusOptions = {}) {
    this.process = options.process ?? 'daemon';
  }

  register<R extends RoleName>(role: Role<R>): void {
    if (this.roles.has(role.name)) throw new BusError(`role ${role.name} registered twice`);
    this.roles.set(role.name, {
      peers: new Set(role.peers),
      handlers: role.handlers as unknown as Record<string, AnyHandler>,
    });
  }

  /** Reach the roles of another process through `link`; replaces an older link to it. */
  attach(link: Link, roles: readonly RoleName[]): void {
    this.detach(link.remote, 'replaced');
    const remote: Remote = { link, roles: new Set(roles), pending: new Map(), deferred: [], deferTimer: null };
    this.remotes.set(link.remote, remote);
    link.onMessage((m) => this.receive(remote, m as Wire));
    link.onClose((reason) => {
      if (this.remotes.get(link.remote) === remote) this.detach(link.remote, reason);
    });
    for (const role of roles) {
      for (const wake of this.waiting.get(role) ?? []) wake();
      this.waiting.delete(role);
    }
  }

  /** Called with a process's name when its link goes: its sessions, bodies and leases are void. */
  onPeerDown(fn: (process: string) => void): void {
    this.downHandlers.push(fn);
  }

  private detach(process: string, reason: string): void {
    const remote = this.remotes.get(process);
    if (!remote) return;
    this.remotes.delete(process);
    if (remote.deferTimer) clearTimeout(remote.deferTimer);
    remote.link.close();
    for (const p of remote.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new BusError(`process ${process} went away (${reason})`));
    }
    remote.pending.clear();
    for (const fn of this.downHandlers) fn(process);
  }

  /** Send a request from one role and wait for the reply of the role that handles its type. */
  async request<T extends MessageType>(from: RoleName, type: T, req: Req<T>): Promise<Res<T>> {
    const to = this.check(from, type);
    const local = this.roles.get(to);
    if (local) return this.callLocal(local, from, type, req);
    return (await this.callRemote(to, from, type, req)) as Res<T>;
  }

  /** Fire and forget; a failure is logged, never thrown into the caller or swallowed. */
  notify<T extends MessageType>(from: RoleName, type: T, req: Req<T>, onError?: (err: unknown) => void): void {
    const fail = (err: unknown) => {
      if (onError) onError(err);
      log('warn', null, from, 'bus-error', { type, error: (err as Error).message });
    };
    let to: RoleName;
    try {
      to = this.check(from, type);
    } catch (err) {
      return fail(err);
    }
    const local = this.roles.get(to);
    if (local) return void this.callLocal(local, from, type, req).catch(fail);
    if (isStatType(type)) return this.stats.add({ type, from, req: req as Req<typeof type> });
    this.send(from, type, req, fail);
  }

  /** A notification to another process, now. */
  private send<T extends MessageType>(from: RoleName, type: T, req: Req<T>, fail: (err: unknown) => void = () => {}): void {
    const to = ROUTES[type];
    const remote = this.remoteFor(to);
    if (!remote) return void this.callRemote(to, from, type, req, true).catch(fail);
    if (DEFERRED.has(type)) return this.defer(remote, { k: 'n', type, from, p: req });
    this.sendTo(remote, { k: 'n', type, from, p: req });
  }

  private defer(remote: Remote, m: Extract<Wire, { k: 'n' }>): void {
    remote.deferred.push(m);
    remote.deferTimer ??= setTimeout(() => this.flushDeferred(remote), DEFER_MS).unref();
  }

  /** Deferred notifications leave before anything sent after them, so their order holds. */
  private flushDeferred(remote: Remote): void {
    if (remote.deferTimer) clearTimeout(remote.deferTimer);
    remote.deferTimer = null;
    const out = remote.deferred;
    remote.deferred = [];
    for (const m of out) this.sendTo(remote, m);
  }

  /** Every message that leaves for another process: TRACE_MPROC's `mproc: A -> B : type`. */
  private sendTo(remote: Remote, m: Extract<Wire, { k: 'q' | 'n' }>): void {
    if (remote.deferred.length && !DEFERRED.has(m.type)) this.flushDeferred(remote);
    trace('mproc', null, 'bus', { from: this.options.process ?? '-', to: remote.link.remote, imsg: m.type, kind: m.k === 'n' ? 'notify' : 'request' });
    remote.link.send(m);
  }

  /**
   * Run a handler as imsg_dispatch() runs a callback: traced under `trace imsg` (log_imsg), timed
   * under `profile imsg`.
   */
  private dispatch<T>(from: string, type: string, run: () => Promise<T>): Promise<T> {
    trace('imsg', null, 'bus', { process: this.options.process ?? '-', from, imsg: type });
    if (!profilingOn('imsg')) return run();
    const t0 = process.hrtime.bigint();
    const done = run();
    const stop = () => profileImsg(this.options.process ?? '-', from, type, t0);
    done.then(stop, stop);
    return done;
  }

  /** The sender-side view of the bus that a role keeps. */
  endpoint(from: RoleName): Endpoint {
    return {
      request: (type, req) => this.request(from, type, req),
      notify: (type, req, onError) => this.notify(from, type, req, onError),
    };
  }

  /** The role a type goes to, after checking the sender may message it. */
  private check(from: RoleName, type: MessageType): RoleName {
    const to = ROUTES[type];
    if (!to) throw new BusError(`unknown message type ${type}`);
    const sender = this.roles.get(from);
    if (!sender) throw new BusError(`unknown sender role ${from}`);
    if (!sender.peers.has(to)) throw new BusError(`${from} may not message ${to} (${type})`);
    return to;
  }

  private async callLocal<T extends MessageType>(target: Registered, from: RoleName, type: T, req: Req<T>): Promise<Res<T>> {
    const handler = target.handlers[type];
    if (!handler) throw new BusError(`role ${ROUTES[type]} has no handler for ${type}`);
    const clone = this.options.checkSerializable;
    const payload = clone ? structuredClone(req) : req;
    await Promise.resolve();
    const res = (await this.dispatch(from, type, async () => handler(payload, from, { process: this.process }))) as Res<T>;
    return clone && res !== undefined ? structuredClone(res) : res;
  }

  private remoteFor(role: RoleName): Remote | undefined {
    for (const r of this.remotes.values()) if (r.roles.has(role)) return r;
    return undefined;
  }

  /** Over the link to the role's process; waits (within the timeout) for a link that is not there yet. */
  private async callRemote(to: RoleName, from: RoleName, type: MessageType, req: unknown, oneWay = false): Promise<unknown> {
    const timeoutMs = this.options.timeouts?.[type] ?? TIMEOUTS[type] ?? DEFAULT_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    let remote = this.remoteFor(to);
    while (!remote) {
      if (!this.options.process) throw new BusError(`no role ${to} for ${type}`);
      await this.linkFor(to, deadline - Date.now(), type);
      remote = this.remoteFor(to);
    }
    if (remote.link.congested()) await remote.link.drained();
    if (oneWay) return void this.sendTo(remote, { k: 'n', type, from, p: req });
    const id = this.nextId++;
    const r = remote;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        r.pending.delete(id);
        reject(new BusError(`${type} to ${to}: no answer within ${Math.round(timeoutMs / 1000)}s`));
      }, Math.max(0, deadline - Date.now()));
      r.pending.set(id, { resolve, reject, timer });
      this.sendTo(r, { k: 'q', id, type, from, p: req });
    });
  }

  private linkFor(role: RoleName, ms: number, type: MessageType): Promise<void> {
    return new Promise((resolve, reject) => {
      if (ms <= 0) return reject(new BusError(`${type}: role ${role} is not running`));
      const set = this.waiting.get(role) ?? new Set();
      this.waiting.set(role, set);
      const wake = () => {
        clearTimeout(timer);
        set.delete(wake);
        resolve();
      };
      const timer = setTimeout(() => {
        set.delete(wake);
        reject(new BusError(`${type}: role ${role} is not running`));
      }, ms);
      set.add(wake);
    });
  }

  private receive(remote: Remote, m: Wire): void {
    if (m.k === 'r') {
      const p = remote.pending.get(m.id);
      if (!p) return; // answered after its timeout: the caller has moved on
      remote.pending.delete(m.id);
      clearTimeout(p.timer);
      return m.ok ? p.resolve(m.p) : p.reject(new BusError(m.e));
    }
    const target = this.inbound(remote, m);
    if (typeof target === 'string') {
      // a process that sends what it may not is broken or compromised: cut it off
      log('error', null, 'bus', 'bus-error', { from: remote.link.remote, type: String(m.type), error: target });
      return this.detach(remote.link.remote, target);
    }
    const origin = { process: remote.link.remote };
    const run = this.dispatch(remote.link.remote, m.type, () => Promise.resolve().then(() => target(m.p, m.from, origin)));
    if (m.k === 'n') {
      run.catch((err: Error) => log('warn', null, ROUTES[m.type], 'bus-error', { type: m.type, from: remote.link.remote, error: err.message }));
      return;
    }
    run.then(
      (p) => remote.link.send({ k: 'r', id: m.id, ok: true, p } satisfies Wire),
      (err: Error) => remote.link.send({ k: 'r', id: m.id, ok: false, e: err.message } satisfies Wire),
    );
  }

  /** The handler for a message from a link, or why it is refused. */
  private inbound(remote: Remote, m: Extract<Wire, { k: 'q' | 'n' }>): AnyHandler | string {
    const to = ROUTES[m.type];
    if (!to) return `unknown message type ${String(m.type)}`;
    if (!remote.roles.has(m.from)) return `role ${String(m.from)} does not live in ${remote.link.remote}`;
    if (!PEERS[m.from]?.includes(to)) return `${m.from} may not message ${to}`;
    const handler = this.roles.get(to)?.handlers[m.type];
    return handler ?? `no role ${to} here for ${m.type}`;
  }
}

export interface Endpoint {
  request<T extends MessageType>(type: T, req: Req<T>): Promise<Res<T>>;
  notify<T extends MessageType>(type: T, req: Req<T>, onError?: (err: unknown) => void): void;
}
