/**
 * The mda role: takes `queue.delivery.mda` requests, runs each under the `mda limit` session
 * limits, answers the queue with the result, logs OpenSMTPD's `mda delivery` line and counts.
 */
import type { Role } from '../bus/bus.js';
import { PEERS, type DeliveryResult, type Req } from '../bus/messages.js';
import type { RoleContext } from '../daemon/context.js';
import { log } from '../log.js';
import { messageBody } from '../queue/body-ref.js';
import type { Envelope } from '../queue/envelope.js';
import { Deliverer, durationText, type MdaOptions } from './deliver.js';
import { DEFAULT_MAX_SESSION, DEFAULT_MAX_SESSION_PER_USER, SessionLimiter } from './limits.js';
import { killAll } from './procs.js';
import { tempfail } from './results.js';

export type { MdaOptions } from './deliver.js';

const RESULT_WORD = { ok: 'Ok', tempfail: 'TempFail', permfail: 'PermFail', loop: 'PermFail' } as const;

export function createMdaRole(ctx: RoleContext, opts: MdaOptions = {}): Role<'mda'> {
  const limits = ctx.config.mdaLimits ?? {};
  const limiter = new SessionLimiter(
    positive(limits['max-session']) ?? DEFAULT_MAX_SESSION,
    positive(limits['max-session-per-user']) ?? DEFAULT_MAX_SESSION_PER_USER,
  );
  const deliverer = new Deliverer({ config: ctx.config, clock: ctx.clock, serverName: ctx.serverName }, opts);
  let stopping = false;

  const count = (key: string, by: number, labels?: Record<string, string>): void => {
    ctx.bus.notify(by >= 0 ? 'stat.increment' : 'stat.decrement', { key, by: Math.abs(by), ...(labels ? { labels } : {}) }, () => undefined);
  };

  async function deliver(req: Req<'queue.delivery.mda'>): Promise<DeliveryResult> {
    const { envelope } = req;
    const body = messageBody(req.body, async (token, offset, length) => (await ctx.bus.request('mda.body.read', { token, offset, length })).data);
    if (stopping) return tempfail('mda is shutting down');
    count('mda.pending', 1);
    const release = await limiter.acquire(envelope.user?.username ?? envelope.rcpt);
    count('mda.pending', -1);
    count('mda.running', 1);
    let result: DeliveryResult;
    try {
      result = stopping ? tempfail('mda is shutting down') : await deliverer.deliver(envelope, body);
    } catch (err) {
      // a bug or an I/O failure we did not foresee: retry later rather than lose or bounce
      log('error', envelope.id, 'mda', 'mda-error', { evpid: envelope.id, error: (err as Error).message });
      result = tempfail('internal error during delivery');
    } finally {
      release();
      count('mda.running', -1);
    }
    // per local (virtual) domain, for the per-domain figures of `show stats`
    count('mda.delivery', 1, { domain: envelope.rcpt.slice(envelope.rcpt.lastIndexOf('@') + 1).toLowerCase(), result: result.result });
    logDelivery(envelope, result, ctx.clock.now());
    return result;
  }

  return {
    name: 'mda',
    peers: PEERS.mda,
    handlers: { 'queue.delivery.mda': deliver },
    async start() {
      stopping = false;
    },
    // nothing new starts; processes under way are ended, and the queue retries their envelopes
    async stop() {
      stopping = true;
      const killed = killAll();
      if (killed) log('warn', null, 'mda', 'shutdown', { killed });
    },
  };
}

function positive(n: number | undefined): number | undefined {
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : undefined;
}

/** `<evpid> mda delivery evpid=.. from=<..> to=<..> rcpt=<..> user=.. delay=.. result=Ok stat=Delivered` */
export function logDelivery(e: Envelope, r: DeliveryResult, nowMs: number): void {
  log(r.result === 'ok' ? 'info' : 'warn', e.id, 'mda', 'delivery', {
    evpid: e.id,
    from: `<${e.sender}>`,
    to: `<${e.rcpt}>`,
    // mda_log() names the original recipient only where expansion changed it
    ...(e.origRcpt && e.origRcpt !== e.rcpt ? { rcpt: `<${e.origRcpt}>` } : {}),
    user: e.user?.username ?? '',
    delay: durationText(Math.floor(nowMs / 1000) - e.createdAt),
    result: RESULT_WORD[r.result],
    stat: r.result === 'ok' ? r.detail : `Error (${r.detail})`,
  });
}
