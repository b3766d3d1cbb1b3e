/**
 * Relays: all deliveries that share a relay spec share one connector. Recipients of one message
 * for one relay that arrive within a short window are sent as ONE transaction, since the queue
 * hands them over one envelope at a time.
 */
import type { DeliveryResult } from '../bus/messages.js';
import type { Clock, Timer } from '../clock.js';
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

export interface RelayPoolOptions {
  resolver: Resolver;
  clock: Clock;
  limits: ConnectorLimits;
  /** Limits for one destination domain, when some differ from the global ones. */
  limitsFor?: (domain: string) => ConnectorLimits;
  timeouts?: Partial<Timeouts>;
  /**
   * How long a message's recipients wait for more siblings after the last one arrived. The
   * scheduler hands a message out in rounds of `max-schedule`, a few milliseconds apart on a
   * busy machine, so the window restarts with each arrival, up to BATCH_MAX_WAIT in all.
   */
  batchWindowMs: number;
  /** Recipients per transaction (RFC 5321 asks servers to take at least 100). */
  maxRcpts: number;
  count?: (key: string) => void;
}

export interface Outcome {
  result: DeliveryResult;
  via?: Via;
}

interface Pending {
  spec: RelaySpec;
  body: MessageBody;
  items: { envelope: Envelope; resolve: (o: Outcome) => void }[];
  timer: Timer;
  firstAt: number;
}

/** The longest the first recipient of a message waits for its siblings. */
const BATCH_MAX_WAIT_MS = 200;

export class RelayPool {
  private readonly connectors = new Map<string, Connector>();
  private readonly pending = new Map<string, Pending>();
  readonly routes = new RouteTable();
  private seq = 0;

  constructor(private readonly o: RelayPoolOptions) {}

  deliver(spec: RelaySpec, envelope: Envelope, body: MessageBody): Promise<Outcome> {
    return new Promise((resolve) => {
      const key = `${spec.key}|${envelope.msgid}|${envelope.sender}`;
      const now = this.o.clock.now();
      let p = this.pending.get(key);
      if (!p) {
        p = { spec, body, items: [], timer: { cancel: () => undefined }, firstAt: now };
        this.pending.set(key, p);
      }
      p.items.push({ envelope, resolve });
      if (p.items.length >= this.o.maxRcpts) return this.flush(key);
      p.timer.cancel();
      const wait = Math.max(0, Math.min(this.o.batchWindowMs, p.firstAt + BATCH_MAX_WAIT_MS - now));
      p.timer = this.o.clock.setTimer(wait, () => this.flush(key));
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

  private flush(key: string): void {
    const p = this.pending.get(key);
    if (!p) return;
    this.pending.delete(key);
    p.timer.cancel();
    const first = p.items[0]!.envelope;
    const tx: Transaction = {
      // mail-from first, then SRS on the result, as mta.c builds task->sender before mta_session encodes it
      sender: senderFor({ ...first, sender: rewriteSender(first.sender, p.spec.mailFrom) }, p.spec.srsKey, this.o.clock.now()),
      rcpts: p.items.map((i) => ({ rcpt: i.envelope.rcpt, dsn: i.envelope.dsn })),
      smtputf8: p.items.some((i) => i.envelope.smtputf8),
      body: p.body,
      ...(first.dsn.ret ? { ret: first.dsn.ret } : {}),
      ...(first.dsn.envid ? { envid: first.dsn.envid } : {}),
    };
    this.connectorFor(p.spec).submit({
      tx,
      done: (results, via) => p.items.forEach((it, i) => it.resolve({ result: results[i]!, ...(via ? { via } : {}) })),
    });
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
      ...(this.o.count ? { count: this.o.count } : {}),
      // `mta limit for domain D ...` applies to MX deliveries for D; everything else takes the global limits
      limits: { ...(this.o.limitsFor && target.kind === 'mx' ? this.o.limitsFor(target.domain) : this.o.limits) },
    });
    this.connectors.set(spec.key, c);
    return c;
  }

  /** Flush what waits for its window, then close idle sessions. */
  async close(): Promise<void> {
    for (const key of [...this.pending.keys()]) this.flush(key);
    await Promise.all([...this.connectors.values()].map((c) => c.close()));
  }
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
