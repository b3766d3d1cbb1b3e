/**
 * The queue role: the only role that touches stored mail. It takes bodies and envelopes from
 * the smtp role and acknowledges them once durable, hands stored envelopes to the scheduler at
 * start, runs the deliveries the scheduler asks for through the mta or the mda, and records
 * their outcome — removal, a retry, or a bounce to the sender.
 */
import type { Role } from '../bus/bus.js';
import { PEERS, type DeliveryResult, type Origin, type Req, type Res } from '../bus/messages.js';
import type { RoleContext } from '../daemon/context.js';
import { log } from '../log.js';
import type { LogEvent } from '../log-events.js';
import type { BodyHandle } from './backend.js';
import { BodyReaders } from './body-readers.js';
import { Bouncer } from './bouncer.js';
import { IncomingBodies } from './incoming.js';
import { errorLine, isEvpid, isMsgid, msgidOf, type Envelope } from './envelope.js';
import { readFile } from 'node:fs/promises';
import { Queue, QueueError } from './queue.js';
import { createQueueBackend } from './registry.js';

/** Envelopes handed to the scheduler per message at start, so a big queue does not make one huge message. */
const WALK_BATCH = 500;
/** `show message` returns at most this much of a message. */
const MAX_SHOWN = 4 * 1024 * 1024;

export interface QueueRole extends Role<'queue'> {
  /** A process went away: drop the bodies it was sending and the readers it held. */
  peerDown(process: string): void;
}

export function createQueueRole(ctx: RoleContext): QueueRole {
  const { config } = ctx;
  const queue = new Queue(createQueueBackend(ctx.backends.queue, ctx.spool, config.queue), {
    spool: ctx.spool,
    clock: ctx.clock,
    compression: config.queue.compression,
    ...(config.queue.encryption ? { encryptionKey: keyOf(config.queue.encryption) } : {}),
  });
  const bouncer = new Bouncer(ctx, queue);
  const incoming = new IncomingBodies();
  const readers = new BodyReaders();
  let stopping = false;

  const submit = (envelopes: Envelope[]) => {
    if (envelopes.length) ctx.bus.notify('queue.envelope.submit', { envelopes }, () => undefined);
  };

  async function create(origin: Origin): Promise<Res<'smtp.message.create'>> {
    const { msgid, path } = await queue.create();
    try {
      await incoming.open(msgid, path, origin.process);
    } catch (err) {
      await queue.rollback(msgid).catch(() => undefined);
      throw err;
    }
    return { msgid };
  }

  async function rollback(msgid: string, origin: Origin): Promise<void> {
    if (await incoming.drop(msgid, origin.process)) await queue.rollback(msgid);
  }

  /**
   * The body must be whole — every octet the session sent is in the file — and the envelopes come
   * from the lka, never from the worker; only then is the message stored (fsync) and acknowledged.
   */
  async function commit(req: Req<'smtp.message.commit'>, _from: unknown, origin: Origin): Promise<Res<'smtp.message.commit'>> {
    if (!incoming.owned(req.msgid, origin.process)) {
      return { result: 'tempfail', reply: { code: 451, enhanced: '4.3.0', text: 'Temporary failure' } };
    }
    try {
      const written = await incoming.finish(req.msgid, origin.process, req.data);
      if (written !== req.size) throw new QueueError('io', `body of ${req.msgid}: ${written} octets stored of ${req.size}`);
      const { envelopes } = await ctx.bus.request('queue.envelopes.claim', { worker: origin.process, sessionId: req.sessionId });
      if (envelopes.length === 0) {
        await queue.rollback(req.msgid);
        return { result: 'reject', reply: { code: 503, enhanced: '5.5.1', text: 'Invalid command: No recipient specified' } };
      }
      const stored = await queue.commit(req.msgid, req.junk ? envelopes.map((e) => ({ ...e, junk: true })) : envelopes, req.size);
      submit(stored);
      ctx.bus.notify('stat.increment', { key: 'queue.message' }, () => undefined);
      return { result: 'ok', envelopes: stored.map((e) => ({ evpid: e.id, rcpt: e.origRcpt })) };
    } catch (err) {
      await queue.rollback(req.msgid).catch(() => undefined);
      const full = QueueError.from(err, 'commit').code === 'full';
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
    const ref = await readers.open(envelope.msgid, body);
    try {
      const type = envelope.kind === 'mda' ? 'queue.delivery.mda' : 'queue.delivery.mta';
      result = await ctx.bus.request(type, { envelope, body: ref });
    } finally {
      await readers.close(ref);
    }
    await record(envelope, result);
  }

  async function record(envelope: Envelope, result: DeliveryResult): Promise<void> {
    const now = Math.floor(ctx.clock.now() / 1000);
    // scheduler.c counts each IMSG_QUEUE_DELIVERY_* it hears: monitor's ok, tmpfail, prmfail, loop
    ctx.bus.notify('stat.increment', { key: `scheduler.delivery.${result.result}` }, () => undefined);
    switch (result.result) {
      case 'ok':
        await bouncer.delivered(envelope, result);
        await queue.remove(envelope.id);
        return void ctx.bus.notify('queue.envelope.done', { evpid: envelope.id }, () => undefined);
      // queue.c IMSG_*_DELIVERY_LOOP: bounced and removed, as a permanent failure is
      case 'permfail':
      case 'loop':
        return bouncer.failed(envelope, result);
      case 'tempfail': {
        const tries = envelope.tries + 1;
        await queue.update({ ...envelope, tries, lastTry: now, lastError: errorLine(result.enhanced, result.detail) });
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
      return e ? { found: true, text: '', envelope: e } : { found: false, text: '' };
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
    peers: PEERS.queue,
    peerDown(process) {
      for (const msgid of incoming.ownedBy(process)) void rollback(msgid, { process });
    },
    handlers: {
      'smtp.message.create': (_req, _from, origin) => create(origin),
      'smtp.message.write': ({ msgid, data }, _from, origin) => incoming.write(msgid, origin.process, data),
      'smtp.message.commit': commit,
      'smtp.message.rollback': ({ msgid }, _from, origin) => rollback(msgid, origin),
      'mta.body.read': ({ token, offset, length }) => readers.read(token, offset, length),
      'mda.body.read': ({ token, offset, length }) => readers.read(token, offset, length),
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
      await readers.closeAll();
      await bouncer.flush();
      await queue.close();
    },
  };
}

/** The queue never runs without the key it was told to encrypt with (smtpd.c reads it before starting the queue). */
function keyOf(enc: { key?: string; from: string }): string {
  if (enc.key === undefined) throw new Error(`queue encryption ${enc.from}: the queue process got no key`);
  return enc.key;
}
