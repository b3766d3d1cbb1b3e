/**
 * One relay's connections: tasks wait in line, idle sessions take the next one, a new session
 * opens only when none is free and the connection limit allows, and an idle session is kept a
 * little while for the next message, then closed.
 */
import type { DeliveryResult } from '../bus/messages.js';
import type { Clock, Timer } from '../clock.js';
import { log } from '../log.js';
import type { MxPlan } from './mx.js';
import { RouteTable, routeKey } from './route.js';
import { MtaSessionError } from './session-error.js';
import { SmtpClientSession, type SessionParams, type Transaction } from './session.js';

export interface Via {
  host: string;
  address: string;
  /** The local address the session connected from (`source=` in the delivery line). */
  source: string;
  /** The session's id, which leads its delivery lines as OpenSMTPD's mta_log() does. */
  session: string;
}

export interface Task {
  tx: Transaction;
  /** Called once: a result per recipient of tx, and the host that answered (if any). */
  done(results: DeliveryResult[], via?: Via): void;
  /** Retried once on a fresh session when a reused one turned out to be dead. */
  retried?: boolean;
}

export interface ConnectorLimits {
  maxConn: number;
  maxMessages: number;
  keepaliveMs: number;
}

export interface ConnectorDeps {
  plan(): Promise<MxPlan>;
  /** Session parameters for one host address (policy, HELO, credentials, timeouts). */
  params(host: string, address: string): SessionParams;
  routes: RouteTable;
  clock: Clock;
  limits: ConnectorLimits;
  id: string;
  /** Counter hook (the role forwards it to the stat role). */
  count?: (key: string) => void;
  /** A task was taken off the list by a session (or failed): how many still wait. */
  onDequeue?: (queued: number) => void;
}

interface Slot {
  session: SmtpClientSession;
  via: Via;
  idleTimer?: Timer;
}

const tempfail = (detail: string, enhanced = '4.4.1'): DeliveryResult => ({ result: 'tempfail', enhanced, detail });

export class Connector {
  private readonly queue: Task[] = [];
  private readonly idle: Slot[] = [];
  private open = 0;
  /** Sessions opened over the connector's life, for tests and stats. */
  opened = 0;

  constructor(private readonly deps: ConnectorDeps) {}

  get connections(): number {
    return this.open;
  }

  get idleCount(): number {
    return this.idle.length;
  }

  /** For `tsmtpctl show relays`. */
  snapshot(): { id: string; connections: number; idle: number; opened: number; queued: number } {
    return { id: this.deps.id, connections: this.open, idle: this.idle.length, opened: this.opened, queued: this.queue.length };
  }

  /** Tasks waiting for a session: what the relay's task water marks are about. */
  get queued(): number {
    return this.queue.length;
  }

  submit(task: Task): void {
    this.queue.push(task);
    this.pump();
  }

  private take(): Task {
    const task = this.queue.shift()!;
    this.deps.onDequeue?.(this.queue.length);
    return task;
  }

  private pump(): void {
    while (this.queue.length) {
      const slot = this.idle.pop();
      if (slot) {
        slot.idleTimer?.cancel();
        void this.run(slot, this.take());
      } else if (this.open < this.deps.limits.maxConn) {
        this.open++;
        void this.connectFor(this.take());
      } else return;
    }
  }

  /** Open a session for this task, trying every host and address in order. */
  private async connectFor(task: Task): Promise<void> {
    const got = await this.establish().catch((err: unknown) => ({ failure: tempfail(`internal error: ${(err as Error).message}`) }));
    if ('failure' in got) {
      this.open--;
      task.done(task.tx.rcpts.map(() => got.failure));
      this.pump();
      return;
    }
    this.opened++;
    await this.run(got, task);
  }

  private async establish(): Promise<Slot | { failure: DeliveryResult }> {
    const plan = await this.deps.plan();
    if (!plan.ok) return { failure: plan.failure };
    let last: MtaSessionError | null = null;
    for (const host of plan.hosts) {
      for (const address of host.addresses) {
        const attempt = await this.tryAddress(host.name, address);
        if ('session' in attempt) return attempt;
        last = attempt.error ?? last;
      }
    }
    // whatever a host said, another MX or a later try may do better: the envelopes wait
    if (!last) return { failure: tempfail('all routes are backed off') };
    return { failure: tempfail(last.detail, last.enhanced.replace(/^5/, '4')) };
  }

  private async tryAddress(host: string, address: string): Promise<Slot | { error?: MtaSessionError }> {
    const params = this.deps.params(host, address);
    const key = routeKey(address, params.port, params.localAddress);
    if (this.deps.routes.disabled(key, this.deps.clock.now())) return {};
    log('info', this.deps.id, 'mta', 'mta-connect', { address: `${address}:${params.port}`, host });
    try {
      const session = await this.openSession(params);
      this.deps.routes.succeeded(key);
      this.deps.count?.('mta.session');
      const tls = session.tlsInfo;
      if (tls) log('info', this.deps.id, 'mta', 'tls', { address, ...tls, verified: tls.verified ? 'valid' : 'unverified' });
      if (session.downgraded) {
        // mail that could have gone encrypted goes in clear: never silently (a stripping attacker looks the same)
        log('warn', this.deps.id, 'mta', 'tls-downgrade', { address: `${address}:${params.port}`, host, reason: session.downgraded });
        this.deps.count?.('mta.tls.downgrade');
      }
      return { session, via: { host, address, source: session.localAddress, session: session.id } };
    } catch (err) {
      const e = err instanceof MtaSessionError ? err : new MtaSessionError('io', (err as Error).message);
      this.deps.count?.('mta.connect.failed');
      if (e.stage === 'connect') {
        const until = this.deps.routes.failed(key, this.deps.clock.now());
        log('warn', this.deps.id, 'mta', 'mta-error', { address: `${address}:${params.port}`, error: e.detail, backoff: Math.round((until - this.deps.clock.now()) / 1000) });
      } else log('warn', this.deps.id, 'mta', 'mta-error', { address: `${address}:${params.port}`, stage: e.stage, error: e.detail });
      return { error: e };
    }
  }

  /** Opportunistic TLS whose handshake breaks is retried once in plaintext, as OpenSMTPD does. */
  private async openSession(params: SessionParams): Promise<SmtpClientSession> {
    try {
      return await SmtpClientSession.open(params);
    } catch (err) {
      if (!(err instanceof MtaSessionError && err.downgrade && params.tls === 'opportunistic')) throw err;
      const plain = await SmtpClientSession.open({ ...params, tls: 'none' });
      plain.downgraded = `TLS handshake failed: ${err.detail}`;
      return plain;
    }
  }

  private async run(slot: Slot, task: Task): Promise<void> {
    const reused = slot.session.messages > 0;
    try {
      task.done(await slot.session.send(task.tx), slot.via);
    } catch (err) {
      const e = err instanceof MtaSessionError ? err : new MtaSessionError('io', (err as Error).message);
      slot.session.destroy();
      this.open--;
      log('warn', this.deps.id, 'mta', 'mta-error', { address: slot.via.address, error: e.detail });
      if (reused && !task.retried) {
        task.retried = true;
        this.queue.unshift(task);
      } else task.done(task.tx.rcpts.map(() => tempfail(e.detail, e.enhanced.replace(/^5/, '4'))), slot.via);
      this.pump();
      return;
    }
    this.release(slot);
  }

  /** Back to the idle set for the next task, or closed when used up or dead. */
  private release(slot: Slot): void {
    if (!slot.session.usable || slot.session.messages >= this.deps.limits.maxMessages) {
      this.open--;
      void slot.session.quit();
      this.pump();
      return;
    }
    this.idle.push(slot);
    this.pump();
    if (this.idle.includes(slot)) {
      slot.idleTimer = this.deps.clock.setTimer(this.deps.limits.keepaliveMs, () => this.expire(slot));
    }
  }

  private expire(slot: Slot): void {
    const i = this.idle.indexOf(slot);
    if (i < 0) return;
    this.idle.splice(i, 1);
    this.open--;
    void slot.session.quit();
  }

  /** Close every idle session; sessions at work finish their message and then close. */
  async close(): Promise<void> {
    const idle = this.idle.splice(0);
    this.open -= idle.length;
    for (const s of idle) s.idleTimer?.cancel();
    await Promise.all(idle.map((s) => s.session.quit()));
    this.deps.limits.maxMessages = 0;
  }
}
