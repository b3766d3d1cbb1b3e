/**
 * The queue role: the only role that touches stored mail. It takes bodies and envelopes from
 * the smtp role and acknowledges them once durable, hands stored envelopes to the scheduler at
 * start, runs the deliveries the scheduler asks for through the mta or the mda, and records
 * their outcome — removal, a retry, or a bounce to the sender.
 */
import type { Role } from '../bus/bus.js';
import type { DeliveryResult, Req, Res } from '../bus/messages.js';
import type { RoleContext } from '../daemon/context.js';
import { log } from '../log.js';
import type { LogEvent } from '../log-events.js';
import type { BodyHandle } from './backend.js';
import { Bouncer } from './bouncer.js';
import { isEvpid, isMsgid, msgidOf, type Envelope } from './envelope.js';
import { readFile } from 'node:fs/promises';
import { Queue, QueueError } from './queue.js';
import { createQueueBackend } from './registry.js';

/** Envelopes handed to the scheduler per message at start, so a big queue does not make one huge message. */
const WALK_BATCH = 500;
/** `show message` returns at most this much of a message. */
const MAX_SHOWN = 4 * 1024 * 1024;

export function createQueueRole(ctx: RoleContext): Role<'queue'> {
  const { config } = ctx;
  const queue = new Queue(createQueueBackend(ctx.backends.queue, ctx.spool), {
    spool: ctx.spool,
    clock: ctx.clock,
    compression: config.queue.compression,
    ...(config.queue.encryption ? { encryptionKey: config.queue.encryption.key } : {}),
  });
  const bouncer = new Bouncer(ctx, queue);
  let stopping = false;

  const submit = (envelopes: Envelope[]) => {
    if (envelopes.length) ctx.bus.notify('queue.envelope.submit', { envelopes }, () => undefined);
  };

  async function commit(req: Req<'smtp.message.commit'>): Promise<Res<'smtp.message.commit'>> {
    try {
      const stored = await queue.commit(req.msgid, req.envelopes, req.size);
      submit(stored);
      ctx.bus.notify('stat.increment', { key: 'queue.message' }, () => undefined);
      return { result: 'ok', evpids: stored.map((e) => e.id) };
    } catch (err) {
      const full = err instanceof QueueError && err.code === 'full';
      log('warn', req.msgid, 'queue', 'commit-failed', { msgid: req.msgid, error: (err as Error).message });
      return {
        result: 'tempfail',
        reply: full ? { code: 452, enhanced: '4.3.1', text: 'Insufficient system storage' } : { code: 451, enhanced: '4.3.0', text: 'Temporary failure' },
      };
    }
  }

  /** An envelope and its body, read from the store and ready to hand out; null when it is gone. */
  async function prepare(evpid: string): Promise<{ envelope: Envelope; body: BodyHandle } | null> {
    const envelope = await queue.load(evpid);
    if (!envelope) {
      ctx.bus.notify('queue.envelope.done', { evpid }, () => undefined);
      return null;
    }
    return { envelope, body: await queue.body(envelope.msgid) };
  }

  /** One delivery attempt of a prepared envelope; any error here means "try again later". */
  async function deliver({ envelope, body }: { envelope: Envelope; body: BodyHandle }): Promise<void> {
    let result: DeliveryResult;
    try {
      const type = envelope.kind === 'mda' ? 'queue.delivery.mda' : 'queue.delivery.mta';
      result = await ctx.bus.request(type, { envelope, bodyPath: body.path });
    } finally {
      await body.release();
    }
    await record(envelope, result);
  }

  async function record(envelope: Envelope, result: DeliveryResult): Promise<void> {
    const now = Math.floor(ctx.clock.now() / 1000);
    switch (result.result) {
      case 'ok':
        await bouncer.delivered(envelope);
        await queue.remove(envelope.id);
        return void ctx.bus.notify('queue.envelope.done', { evpid: envelope.id }, () => undefined);
      case 'permfail':
        return bouncer.failed(envelope, result);
      case 'tempfail':
      case 'loop': {
        const tries = envelope.tries + (result.result === 'tempfail' ? 1 : 0);
        await queue.update({ ...envelope, tries, lastTry: now, lastError: `${result.enhanced} ${result.detail}` });
        return void ctx.bus.notify('queue.envelope.retry', { evpid: envelope.id, tries, lastTry: now }, () => undefined);
      }
    }
  }

  const schedule = async ({ evpids }: Req<'scheduler.envelope.schedule'>) => {
    const failed = (evpid: string) => (err: Error) => {
      log('warn', evpid, 'queue', 'delivery-error', { evpid, error: err.message });
      if (!stopping) {
        ctx.bus.notify('queue.envelope.retry', { evpid, tries: 0, lastTry: Math.floor(ctx.clock.now() / 1000) }, () => undefined);
      }
    };
    // the whole batch is read before any of it is handed out: the recipients of a message then
    // reach the mta together, within its batch window however slow the store is, and travel in
    // one transaction
    const ready = await Promise.all(evpids.map((evpid) => prepare(evpid).catch((err: Error) => void failed(evpid)(err))));
    ready.forEach((p, i) => {
      if (p) deliver(p).catch(failed(evpids[i]!));
    });
  };

  const onEnvelope = (what: LogEvent, fn: (e: Envelope) => Promise<void>) => ({ evpid }: { evpid: string }) => {
    queue.load(evpid)
      .then((e) => (e ? fn(e) : undefined))
      .catch((err: Error) => log('warn', evpid, 'queue', what, { evpid, error: err.message }));
  };

  /** Envelopes of one message or of the whole queue, for `show queue` (bounded: it is read on demand). */
  async function list(msgid: string | undefined, limit: number): Promise<Res<'control.queue.list'>> {
    const envelopes: Envelope[] = [];
    for await (const e of queue.walk()) {
      if (msgid && e.msgid !== msgid) continue;
      if (envelopes.length >= limit) return { envelopes, truncated: true };
      envelopes.push(e);
    }
    return { envelopes, truncated: false };
  }

  async function show(id: string, what: 'envelope' | 'message'): Promise<Res<'control.queue.show'>> {
    if (what === 'envelope') {
      const e = isEvpid(id) ? await queue.load(id) : undefined;
      return e ? { found: true, text: JSON.stringify(e, null, 2) + '\n' } : { found: false, text: '' };
    }
    const msgid = isEvpid(id) ? msgidOf(id) : id;
    if (!isMsgid(msgid)) return { found: false, text: '' };
    const body = await queue.body(msgid).catch(() => null);
    if (!body) return { found: false, text: '' };
    try {
      const content = await readFile(body.path);
      // a control reply is one JSON line: cap what a huge message could make of it
      return { found: true, text: content.subarray(0, MAX_SHOWN).toString('utf8') };
    } finally {
      await body.release();
    }
  }

  /** `discover`: envelopes put in the queue by hand are handed to the scheduler. */
  async function discover(id: string): Promise<Res<'control.queue.discover'>> {
    const found: Envelope[] = [];
    for await (const e of queue.walk()) if (e.id === id || e.msgid === id) found.push(e);
    submit(found);
    return { count: found.length };
  }

  return {
    name: 'queue',
    peers: ['scheduler', 'mta', 'mda', 'lka', 'stat'],
    handlers: {
      'smtp.message.create': () => queue.create(),
      'smtp.message.commit': commit,
      'smtp.message.rollback': ({ msgid }) => queue.rollback(msgid),
      'scheduler.envelope.schedule': schedule,
      'scheduler.envelope.expire': onEnvelope('expire', (e) => bouncer.expired(e)),
      'scheduler.envelope.warn': onEnvelope('delay-notice', (e) => bouncer.delayed(e)),
      'control.queue.list': ({ msgid, limit }) => list(msgid, limit),
      'control.queue.show': ({ id, what }) => show(id, what),
      'control.queue.discover': ({ id }) => discover(id),
      'scheduler.envelope.remove': onEnvelope('remove', async (e) => {
        await queue.remove(e.id);
        log('info', e.id, 'queue', 'remove', { evpid: e.id, reason: 'Removed by administrator' });
      }),
    },
    async start() {
      stopping = false;
      await queue.open();
      let batch: Envelope[] = [];
      let count = 0;
      for await (const envelope of queue.walk()) {
        batch.push(envelope);
        count++;
        if (batch.length >= WALK_BATCH) submit(batch.splice(0));
      }
      submit(batch);
      batch = [];
      log('info', null, 'queue', 'queue-load', { envelopes: count, backend: ctx.backends.queue });
    },
    async stop() {
      stopping = true;
      await bouncer.flush();
      await queue.close();
    },
  };
}
