/**
 * The mta role: takes `queue.delivery.mta` requests (a message's due envelopes for one
 * destination), hands them to the relay pool grouped by relay, answers the queue with a result
 * per envelope, and logs OpenSMTPD's `mta delivery` line and counts.
 */
import type { Role } from '../bus/bus.js';
import { PEERS, type DeliveryResult, type MtaResult, type Req, type Res } from '../bus/messages.js';
import type { RoleContext } from '../daemon/context.js';
import { systemClock } from '../clock.js';
import { createResolver } from '../dns/index.js';
import type { Resolver } from '../dns/resolver.js';
import { log, quoted } from '../log.js';
import { durationText } from '../mda/deliver.js';
import { messageBody, type MessageBody } from '../queue/body-ref.js';
import type { Envelope } from '../queue/envelope.js';
import { DEFAULT_TASK_LIMITS, RelayPool, type Delivered, type Outcome } from './relay.js';
import { MtaInspector } from './inspect.js';
import { rewriteSender } from './mail-from.js';
import type { Timeouts } from './session.js';
import { relaySpec, type RelaySpec, type SpecContext } from './spec.js';

export interface MtaOptions {
  resolver?: Resolver;
  /** Extra CA certificates (PEM) trusted when verifying remote hosts. */
  ca?: string[];
  timeouts?: Partial<Timeouts>;
}

const RESULT_WORD = { ok: 'Ok', tempfail: 'TempFail', permfail: 'PermFail', loop: 'PermFail' } as const;

/** An `mta limit` value: the domain's own when it has one, else the global one, else the default. */
function limit(ctx: RoleContext, key: string, fallback: number, domain?: string): number {
  const pick = (match: (d: string | undefined) => boolean) =>
    ctx.config.mta.limits.filter((l) => match(l.domain)).map((l) => l.limits[key]).find((n) => n !== undefined);
  const v = (domain ? pick((d) => d?.toLowerCase() === domain.toLowerCase()) : undefined) ?? pick((d) => !d);
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : fallback;
}

function connectorLimits(ctx: RoleContext, domain?: string) {
  return {
    maxConn: limit(ctx, 'max-conn-per-route', 5, domain),
    maxMessages: limit(ctx, 'session-mail-max', 100, domain),
    keepaliveMs: limit(ctx, 'session-keepalive', 10, domain) * 1000,
  };
}

export function createMtaRole(ctx: RoleContext, opts: MtaOptions = {}): Role<'mta'> {
  const resolver = opts.resolver ?? createResolver(ctx.config, ctx.clock);
  const count = (key: string, labels?: Record<string, string>): void => {
    ctx.bus.notify('stat.increment', { key, by: 1, ...(labels ? { labels } : {}) }, () => undefined);
  };
  const pool = new RelayPool({
    count,
    resolver,
    // network timeouts, idle sessions and route backoff are about real elapsed time; the daemon's
    // clock (fake in tests) decides when envelopes are retried, which is the scheduler's business
    clock: systemClock,
    limits: connectorLimits(ctx),
    limitsFor: (domain) => connectorLimits(ctx, domain),
    ...(opts.timeouts ? { timeouts: opts.timeouts } : {}),
    // RFC 5321 4.5.3.1.8: a server must take at least 100; one that takes fewer says 452
    maxRcpts: 100,
    tasks: {
      hiwat: limit(ctx, 'task-hiwat', DEFAULT_TASK_LIMITS.hiwat),
      lowat: limit(ctx, 'task-lowat', DEFAULT_TASK_LIMITS.lowat),
      release: limit(ctx, 'task-release', DEFAULT_TASK_LIMITS.release),
    },
    release: (holdq, n) => ctx.bus.notify('mta.holdq.release', { holdq, count: n }, () => undefined),
  });
  let stopping = false;
  const inspector = new MtaInspector(pool, () => Date.now());

  const sc: SpecContext = {
    config: ctx.config,
    lookup: (req) => ctx.bus.request('mta.table.lookup', req),
    serverName: ctx.serverName,
    ...(opts.ca ? { ca: opts.ca } : {}),
    ...(ctx.keys ? { keys: ctx.keys } : {}),
  };

  /** Group by relay (each envelope's own spec), deliver each group, an outcome per envelope in order. */
  async function attempt(envelopes: Envelope[], body: MessageBody): Promise<Outcome[]> {
    const outcomes: Outcome[] = new Array(envelopes.length);
    const groups = new Map<string, { spec: RelaySpec; indexes: number[] }>();
    await Promise.all(envelopes.map(async (envelope, i) => {
      const relay = ctx.config.actions.get(envelope.action)?.relay;
      if (!relay) return void (outcomes[i] = { result: { result: 'permfail', enhanced: '5.3.5', detail: `action ${envelope.action} is not a relay action` } });
      const spec = await relaySpec(envelope, relay, sc);
      if ('result' in spec) return void (outcomes[i] = { result: spec });
      const g = groups.get(spec.key) ?? { spec, indexes: [] };
      g.indexes.push(i);
      groups.set(spec.key, g);
    }));
    await Promise.all([...groups.values()].map(async ({ spec, indexes }) => {
      // in the order the queue gave them: the transaction's RCPTs follow the message's
      indexes.sort((a, b) => a - b);
      const got = await pool.deliver(spec, indexes.map((i) => envelopes[i]!), body);
      indexes.forEach((i, k) => (outcomes[i] = got[k]!));
    }));
    return outcomes;
  }

  async function deliver(req: Req<'queue.delivery.mta'>): Promise<Res<'queue.delivery.mta'>> {
    const { envelopes } = req;
    if (stopping) return { results: envelopes.map(() => ({ result: 'tempfail', enhanced: '4.3.2', detail: 'mta is shutting down' })) };
    const body = messageBody(req.body, async (token, offset, length) => (await ctx.bus.request('mta.body.read', { token, offset, length })).data);
    let outcomes: Outcome[];
    try {
      outcomes = await attempt(envelopes, body);
    } catch (err) {
      // a bug or an unforeseen I/O failure: retry later rather than bounce
      log('error', envelopes[0]?.msgid ?? null, 'mta', 'mta-error', { msgid: envelopes[0]?.msgid ?? '-', error: (err as Error).message });
      outcomes = envelopes.map(() => ({ result: { result: 'tempfail', enhanced: '4.3.0', detail: 'internal error during delivery' } }));
    }
    const results: MtaResult[] = outcomes.map((outcome, i) => {
      if ('held' in outcome) return { result: 'hold', holdq: outcome.held };
      const envelope = envelopes[i]!;
      // per destination domain, so an admin sees each domain's deliveries at runtime
      count('mta.delivery', { domain: domainOf(envelope.rcpt), result: outcome.result.result });
      inspector.record(domainOf(envelope.rcpt), outcome);
      // the log names the sender the next hop was given (mta_log prints task->sender)
      const mailFrom = ctx.config.actions.get(envelope.action)?.relay?.mailFrom;
      logDelivery({ ...envelope, sender: rewriteSender(envelope.sender, mailFrom) }, outcome, ctx.clock.now());
      return outcome.result;
    });
    return { results };
  }

  return {
    name: 'mta',
    peers: PEERS.mta,
    handlers: {
      'queue.delivery.mta': deliver,
      'control.mta.show': ({ what }) => inspector.show(what),
      'control.mta.resume-route': ({ route }) => {
        const resumed = route === undefined ? pool.routes.resumeAll(Date.now()) : Number(pool.routes.resume(route));
        if (resumed) log('info', null, 'mta', 'control', { op: 'resume-route', route: route ?? 'all', resumed });
        return { found: resumed > 0 };
      },
    },
    async start() {
      stopping = false;
    },
    async stop() {
      stopping = true;
      await pool.close();
      if (!opts.resolver) resolver.close();
    },
  };
}

/**
 * mta_log(): `<session> mta delivery evpid=.. from=<..> to=<..> rcpt=<..> source=".." relay="addr (name)"
 * delay=.. result="Ok" stat=".."`, the quotes where OpenSMTPD writes them. Without a session (no
 * host could be reached) the relay is the domain and the source `-`, as mta_flush_task() logs it.
 */
export function logDelivery(e: Envelope, o: Delivered, nowMs: number): void {
  const r = o.result;
  const via = o.via;
  const host = (a: string) => (a.includes(':') ? `[${a}]` : a);
  log(r.result === 'ok' ? 'info' : 'warn', via?.session ?? e.id, 'mta', 'delivery', {
    evpid: e.id,
    from: `<${e.sender}>`,
    to: `<${e.rcpt}>`,
    rcpt: `<${e.origRcpt && e.origRcpt !== e.rcpt ? e.origRcpt : '-'}>`,
    source: quoted(via?.source ? host(via.source) : '-'),
    relay: quoted(via ? (via.host === via.address ? host(via.address) : `${host(via.address)} (${via.host})`) : domainOf(e.rcpt)),
    delay: durationText(Math.floor(nowMs / 1000) - e.createdAt),
    result: quoted(RESULT_WORD[r.result]),
    stat: quoted(r.detail),
  });
}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}
