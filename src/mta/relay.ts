/**
 * Relays: all deliveries that share a relay spec share one connector. The queue hands the mta a
 * message's due envelopes for one destination together, so they leave in as few transactions as
 * the server allows: chunks of `maxRcpts`, and the recipients a server refuses with 452 4.5.3
 * ("too many recipients") sent again at once in a new transaction, as RFC 5321 4.5.3.1.10 asks.
 * No timer regroups anything.
 *
 * Each relay's task list is bounded as OpenSMTPD's mta is (limit.c task-hiwat/lowat/release):
 * past the high water mark envelopes are held by the scheduler for that relay, and released a
 * few at a time as the list drains, so a tarpitting server cannot take every in-flight slot.
 */
import type { DeliveryResult } from '../bus/messages.js';
import type { Clock } from '../clock.js';
import { srsEncode } from '../srs/srs.js';
import type { Resolver } from '../dns/resolver.js';
import type { MessageBody } from '../queue/body-ref.js';
import type { Envelope } from '../queue/envelope.js';
import { Connector, type ConnectorLimits, type Via } from './connector.js';
import { rewriteSender } from './mail-from.js';
import { resolveHost, resolveMx } from './mx.js';
import { RouteTable } from './route.js';
import { DEFAULT_TIMEOUTS, type Timeouts, type Transaction } from './session.js';
import type { RelaySpec } from './spec.js';

/** OpenSMTPD's task water marks for a relay (limit.c defaults). */
export interface TaskLimits {
  hiwat: number;
  lowat: number;
  release: number;
}

export const DEFAULT_TASK_LIMITS: TaskLimits = { hiwat: 50, lowat: 30, release: 10 };

export interface RelayPoolOptions {
  resolver: Resolver;
  clock: Clock;
  limits: ConnectorLimits;
  /** Limits for one destination domain, when some differ from the global ones. */
  limitsFor?: (domain: string) => ConnectorLimits;
  timeouts?: Partial<Timeouts>;
  /** Recipients per transaction (RFC 5321 asks servers to take at least 100). */
  maxRcpts: number;
  tasks?: TaskLimits;
  /** A relay that held envelopes has room again: let `count` of them come back (0 = all). */
  release?: (holdq: string, count: number) => void;
  count?: (key: string) => void;
}

/** A delivery attempt's result for one envelope, and the host that gave it. */
export type Delivered = { result: DeliveryResult; via?: Via };
export type Outcome = Delivered | { held: string };

export class RelayPool {
  private readonly connectors = new Map<string, Connector>();
  /** Relays that sent envelopes back to the scheduler, and so must release them. */
  private readonly holding = new Set<string>();
  readonly routes = new RouteTable();
  private seq = 0;

  constructor(private readonly o: RelayPoolOptions) {}

  private get tasks(): TaskLimits {
    return this.o.tasks ?? DEFAULT_TASK_LIMITS;
  }

  /** Deliver envelopes of one message through one relay: an outcome per envelope, in order. */
  async deliver(spec: RelaySpec, envelopes: Envelope[], body: MessageBody): Promise<Outcome[]> {
    const connector = this.connectorFor(spec);
    if (connector.queued >= this.tasks.hiwat) {
      this.holding.add(spec.key);
      this.o.count?.('mta.task.held');
      return envelopes.map(() => ({ held: spec.key }));
    }
    const outcomes: Outcome[] = new Array(envelopes.length);
    const now = this.o.clock.now();
    // SRS can give each envelope its own sender: one transaction per sender
    const bySender = new Map<string, number[]>();
    envelopes.forEach((e, i) => {
      // mail-from first, then SRS on the result, as mta.c builds task->sender before mta_session encodes it
      const sender = senderFor({ ...e, sender: rewriteSender(e.sender, spec.mailFrom) }, spec.srsKey, now);
      const list = bySender.get(sender);
      if (list) list.push(i);
      else bySender.set(sender, [i]);
    });
    const sends: Promise<void>[] = [];
    for (const [sender, indexes] of bySender) {
      for (let at = 0; at < indexes.length; at += this.o.maxRcpts) {
        const chunk = indexes.slice(at, at + this.o.maxRcpts);
        sends.push(this.send(connector, sender, chunk.map((i) => envelopes[i]!), body).then((got) => chunk.forEach((i, k) => (outcomes[i] = got[k]!))));
      }
    }
    await Promise.all(sends);
    return outcomes;
  }

  /** One transaction, then another for what the server refused as too many, while it makes progress. */
  private async send(connector: Connector, sender: string, envelopes: Envelope[], body: MessageBody): Promise<Outcome[]> {
    const outcomes: Outcome[] = new Array(envelopes.length);
    let left = envelopes.map((_, i) => i);
    while (left.length) {
      const batch = left;
      const got = await this.transaction(connector, sender, batch.map((i) => envelopes[i]!), body);
      batch.forEach((i, k) => (outcomes[i] = got[k]!));
      const accepted = got.some((o) => 'result' in o && o.result.result === 'ok');
      left = accepted ? batch.filter((_, k) => tooMany(got[k]!)) : [];
    }
    return outcomes;
  }

  private transaction(connector: Connector, sender: string, envelopes: Envelope[], body: MessageBody): Promise<Outcome[]> {
    const first = envelopes[0]!;
    const tx: Transaction = {
      sender,
      rcpts: envelopes.map((e) => ({ rcpt: e.rcpt, dsn: e.dsn })),
      smtputf8: envelopes.some((e) => e.smtputf8),
      body,
      ...(first.dsn.ret ? { ret: first.dsn.ret } : {}),
      ...(first.dsn.envid ? { envid: first.dsn.envid } : {}),
    };
    return new Promise((resolve) => {
      connector.submit({ tx, done: (results, via) => resolve(results.map((result) => ({ result, ...(via ? { via } : {}) }))) });
    });
  }

  /** Every relay and its connector's state, for `tsmtpctl show relays`. */
  relays(): { relay: string; id: string; connections: number; idle: number; opened: number; queued: number }[] {
    return [...this.connectors].map(([key, c]) => {
      const [target, port] = JSON.parse(key) as [{ kind: string; domain?: string; host?: string }, number];
      return { relay: `${target.domain ?? target.host}:${port}`, ...c.snapshot() };
    });
  }

  /** The connector of a relay, for tests and inspection. */
  connector(specKey: string): Connector | undefined {
    return this.connectors.get(specKey);
  }

  /** A task left a relay's list: below the low water mark, held envelopes may come back. */
  private dequeued(key: string, queued: number): void {
    if (!this.holding.has(key) || queued > this.tasks.lowat) return;
    if (queued === 0) this.holding.delete(key);
    this.o.release?.(key, queued === 0 ? 0 : this.tasks.release);
  }

  private connectorFor(spec: RelaySpec): Connector {
    let c = this.connectors.get(spec.key);
    if (c) return c;
    const { resolver, clock } = this.o;
    const timeouts = { ...DEFAULT_TIMEOUTS, ...this.o.timeouts };
    const target = spec.target;
    c = new Connector({
      id: (++this.seq).toString(16).padStart(16, '0'),
      plan: () => (target.kind === 'mx' ? resolveMx(resolver, target.domain, Math.random, spec.backupOf) : resolveHost(resolver, target.host)),
      params: (host, address) => ({
        address, port: spec.port, hostname: host, tls: spec.tls, verify: spec.verify, helo: spec.helo, lmtp: spec.lmtp,
        timeouts, clock,
        ...(spec.ca ? { ca: spec.ca } : {}),
        ...(spec.tlsClient ? { tlsClient: spec.tlsClient } : {}),
        ...(spec.auth ? { auth: spec.auth } : {}),
        ...(spec.localAddress ? { localAddress: spec.localAddress } : {}),
      }),
      routes: this.routes,
      clock,
      onDequeue: (queued) => this.dequeued(spec.key, queued),
      ...(this.o.count ? { count: this.o.count } : {}),
      // `mta limit for domain D ...` applies to MX deliveries for D; everything else takes the global limits
      limits: { ...(this.o.limitsFor && target.kind === 'mx' ? this.o.limitsFor(target.domain) : this.o.limits) },
    });
    this.connectors.set(spec.key, c);
    return c;
  }

  /** Close idle sessions; sessions at work finish their message and then close. */
  async close(): Promise<void> {
    await Promise.all([...this.connectors.values()].map((c) => c.close()));
  }
}

/** RFC 5321 4.5.3.1.10: a server past its recipient limit answers 452 (4.5.3); the rest go in a new transaction. */
function tooMany(o: Outcome): boolean {
  return 'result' in o && o.result.result === 'tempfail' && (o.result.enhanced === '4.5.3' || /^452[ -]/.test(o.result.detail));
}

/**
 * SRS applies to mail we forward (the final recipient differs from the one we were given), never
 * to the null sender: the rewritten sender is at the domain that did the forwarding.
 */
function senderFor(e: Envelope, srsKey: string | undefined, nowMs: number): string {
  if (!srsKey || e.sender === '' || e.rcpt.toLowerCase() === e.origRcpt.toLowerCase()) return e.sender;
  const forwarder = e.origRcpt.slice(e.origRcpt.lastIndexOf('@') + 1);
  return forwarder ? srsEncode(e.sender, forwarder, srsKey, Math.floor(nowMs / 1000)) : e.sender;
}
