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
import { BodyCache } from './body-cache.js';
import { BodyReaders } from './body-readers.js';
import { Bouncer } from './bouncer.js';
import { closeQuietly } from './durable.js';
import { IncomingBodies } from './incoming.js';
import { errorLine, isEvpid, isMsgid, msgidOf, type Envelope } from './envelope.js';
import { open } from 'node:fs/promises';
import { Queue, QueueError } from './queue.js';
import { StagedEnvelopes } from './staged.js';
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
  const cache = new BodyCache();
  let stopping = false;

  const submit = (envelopes: Envelope[]) => {
    if (envelopes.length) ctx.bus.notify('queue.envelope.submit', { envelopes }, () => undefined);
  };

  /** The lka's envelopes of each message under reception, sent as its recipients are accepted. */
  const staged = new StagedEnvelopes();

  async function create(origin: Origin): Promise<Res<'smtp.message.create'>> {
    const { msgid, fd } = await queue.create();
    cache.delete(msgid);
    incoming.open(msgid, fd, origin.process);
    staged.open(msgid, origin.process);
    return { msgid };
  }

  async function rollback(msgid: string, origin: Origin): Promise<void> {
    if (!(await incoming.drop(msgid, origin.process))) return;
    staged.drop(msgid);
    await queue.rollback(msgid);
  }

  /**
   * The body must be whole — every octet the session sent is in the file — and the envelopes come
   * from the lka, never from the worker; only then is the message stored (fsync) and acknowledged.
   */
  async function commit(req: Req<'smtp.message.commit'>, _from: unknown, origin: Origin): Promise<Res<'smtp.message.commit'>> {
    if (!incoming.owned(req.msgid, origin.process)) {
      return { result: 'tempfail', reply: { code: 451, enhanced: '4.3.0', text: 'Temporary failure' } };
    }
    const envelopesOf = staged.take(req.msgid, req.rcpts);
    envelopesOf.catch(() => undefined);
    let fd: number | undefined;
    try {
      const body = await incoming.finish(req.msgid, origin.process, req.data);
      fd = body.fd;
      if (body.written !== req.size) throw new QueueError('io', `body of ${req.msgid}: ${body.written} octets stored of ${req.size}`);
      const envelopes = await envelopesOf;
      if (envelopes.length === 0) {
        await queue.rollback(req.msgid);
        return { result: 'reject', reply: { code: 503, enhanced: '5.5.1', text: 'Invalid command: No recipient specified' } };
      }
      const stored = await queue.commit(req.msgid, req.junk ? envelopes.map((e) => ({ ...e, junk: true })) : envelopes, req.size, undefined, fd);
      if (body.kept) cache.set(req.msgid, body.kept, stored.length);
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
    } finally {
      if (fd !== undefined) closeQuietly(fd);
    }
  }

  /**
   * One delivery attempt of envelopes of one message: the mta gets them in one request (it puts
   * them in as few transactions as the server allows), the mda one by one. The body is opened
   * once for all of them.
   */
  async function deliver(envelopes: Envelope[]): Promise<void> {
    const msgid = envelopes[0]!.msgid;
    const kept = cache.get(msgid);
    const ref = kept ? { msgid, size: kept.length, inline: kept } : await readers.open(msgid, await queue.body(msgid));
    try {
      if (envelopes[0]!.kind === 'mda') {
        await Promise.all(envelopes.map((envelope) =>
          ctx.bus.request('queue.delivery.mda', { envelope, body: ref })
            .then((result) => record([envelope], [result]))
            .catch(failed(envelope.id))));
        return;
      }
      const { results } = await ctx.bus.request('queue.delivery.mta', { envelopes, body: ref });
      if (results.length !== envelopes.length) throw new Error(`mta answered ${results.length} results for ${envelopes.length} envelopes`);
      const holds = new Map<string, string[]>();
      const done: Envelope[] = [];
      const outcomes: DeliveryResult[] = [];
      results.forEach((r, i) => {
        if (r.result === 'hold') pushTo(holds, r.holdq, envelopes[i]!.id);
        else {
          done.push(envelopes[i]!);
          outcomes.push(r);
        }
      });
      for (const [holdq, evpids] of holds) ctx.bus.notify('queue.envelope.hold', { evpids, holdq }, () => undefined);
      await record(done, outcomes);
    } finally {
      await readers.close(ref);
    }
  }

  /** Outcomes of one attempt: delivered envelopes leave the store together, retries are updated together. */
  async function record(envelopes: Envelope[], results: DeliveryResult[]): Promise<void> {
    const now = Math.floor(ctx.clock.now() / 1000);
    const delivered: { envelope: Envelope; result: Extract<DeliveryResult, { result: 'ok' }> }[] = [];
    const retries: Envelope[] = [];
    envelopes.forEach((envelope, i) => {
      const result = results[i]!;
      // delivered or bounced, the envelope leaves the queue: its message's kept body is needed once less
      if (result.result !== 'tempfail') cache.settle(envelope.msgid, 1);
      // scheduler.c counts each IMSG_QUEUE_DELIVERY_* it hears: monitor's ok, tmpfail, prmfail, loop
      ctx.bus.notify('stat.increment', { key: `scheduler.delivery.${result.result}` }, () => undefined);
      if (result.result === 'ok') delivered.push({ envelope, result });
      // queue.c IMSG_*_DELIVERY_LOOP: bounced and removed, as a permanent failure is
      else if (result.result === 'permfail' || result.result === 'loop') void bouncer.failed(envelope, result);
      else {
        const tries = envelope.tries + 1;
        retries.push({ ...envelope, tries, lastTry: now, lastError: errorLine(result.enhanced, result.detail) });
      }
    });
    for (const { envelope, result } of delivered) await bouncer.delivered(envelope, result);
    if (delivered.length) await queue.remove(delivered.map((d) => d.envelope.id));
    for (const { envelope } of delivered) ctx.bus.notify('queue.envelope.done', { evpid: envelope.id }, () => undefined);
    if (retries.length) await queue.update(retries);
    for (const e of retries) ctx.bus.notify('queue.envelope.retry', { evpid: e.id, tries: e.tries, lastTry: now }, () => undefined);
  }

  /** A delivery that could not even be attempted (store or bus error): try again later. */
  function failed(evpid: string): (err: Error) => void {
    return (err) => {
      log('warn', evpid, 'queue', 'delivery-error', { evpid, error: err.message });
      if (!stopping) {
        ctx.bus.notify('queue.envelope.retry', { evpid, tries: 0, lastTry: Math.floor(ctx.clock.now() / 1000) }, () => undefined);
      }
    };
  }

  /** The scheduler hands out a message's due envelopes for a destination together: they stay together. */
  const schedule = async ({ evpids }: Req<'scheduler.envelope.schedule'>) => {
    const groups = new Map<string, Envelope[]>();
    for (const evpid of evpids) {
      const envelope = await queue.load(evpid).catch((err: Error) => void failed(evpid)(err));
      if (envelope === undefined) {
        ctx.bus.notify('queue.envelope.done', { evpid }, () => undefined);
        continue;
      }
      const key = `${envelope.msgid}|${envelope.kind === 'mda' ? 'mda' : 'mta'}`;
      pushTo(groups, key, envelope);
    }
    for (const envelopes of groups.values()) {
      deliver(envelopes).catch((err: Error) => envelopes.forEach((e) => failed(e.id)(err)));
    }
  };

  const onEnvelope = (what: LogEvent, fn: (e: Envelope) => Promise<void>) => ({ evpid }: { evpid: string }) => {
    queue.load(evpid)
      .then((e) => (e ? fn(e) : undefined))
      .catch((err: Error) => log('warn', evpid, 'queue', what, { evpid, error: err.message }));
  };

  /** Envelopes of one message or of the whole queue, for `show queue` (bounded: it is read on demand). */
  async function list(msgid: string | undefined, limit: number, after = ''): Promise<Res<'control.queue.list'>> {
    const envelopes: Envelope[] = [];
    for await (const e of queue.walk()) {
      if ((msgid && e.msgid !== msgid) || e.id <= after) continue;
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
      // a control reply is one JSON line: cap what a huge message could make of it
      const content = Buffer.alloc(Math.min(body.size, MAX_SHOWN));
      const fh = await open(body.path, 'r');
      try {
        await fh.read(content, 0, content.length, 0);
      } finally {
        await fh.close();
      }
      return { found: true, text: content.toString('utf8') };
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

  /** Hand every stored envelope to the scheduler, in batches, as the store is read. */
  async function load(): Promise<void> {
    const started = Date.now();
    let batch: Envelope[] = [];
    let count = 0;
    for await (const envelope of queue.walk()) {
      if (stopping) return;
      batch.push(envelope);
      count++;
      if (batch.length >= WALK_BATCH) submit(batch.splice(0));
    }
    submit(batch);
    batch = [];
    log('info', null, 'queue', 'queue-load', { envelopes: count, backend: ctx.backends.queue, ms: Date.now() - started });
  }
  let loading: Promise<void> = Promise.resolve();

  return {
    name: 'queue',
    peers: PEERS.queue,
    peerDown(process) {
      for (const msgid of incoming.ownedBy(process)) void rollback(msgid, { process });
    },
    handlers: {
      'smtp.message.create': (_req, _from, origin) => create(origin),
      'lka.envelopes.stage': ({ worker, msgid, envelopes }) => void staged.add(msgid, worker, envelopes),
      'smtp.message.write': ({ msgid, data }, _from, origin) => incoming.write(msgid, origin.process, data),
      'smtp.message.commit': commit,
      'smtp.message.rollback': ({ msgid }, _from, origin) => rollback(msgid, origin),
      'mta.body.read': ({ token, offset, length }) => readers.read(token, offset, length),
      'mda.body.read': ({ token, offset, length }) => readers.read(token, offset, length),
      'scheduler.envelope.schedule': schedule,
      'scheduler.envelope.expire': onEnvelope('expire', (e) => bouncer.expired(e)),
      'scheduler.envelope.warn': onEnvelope('delay-notice', (e) => bouncer.delayed(e)),
      'control.queue.list': ({ msgid, limit, after }) => list(msgid, limit, after),
      'control.queue.show': ({ id, what }) => show(id, what),
      'control.queue.discover': ({ id }) => discover(id),
      'scheduler.envelope.remove': onEnvelope('remove', async (e) => {
        await queue.remove([e.id]);
        log('info', e.id, 'queue', 'remove', { evpid: e.id, reason: 'Removed by administrator' });
      }),
    },
    async start() {
      stopping = false;
      await queue.open();
      // a big queue takes a while to read back: new mail is accepted (and delivered) meanwhile
      loading = load().catch((err: Error) => log('error', null, 'queue', 'queue-load', { error: err.message }));
    },
    async stop() {
      stopping = true;
      await loading;
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

function pushTo<T>(groups: Map<string, T[]>, key: string, item: T): void {
  const list = groups.get(key);
  if (list) list.push(item);
  else groups.set(key, [item]);
}
