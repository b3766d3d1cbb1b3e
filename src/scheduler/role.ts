/**
 * The scheduler role: decides when each stored envelope is tried, and owns the daemon's one
 * delivery timer. Envelopes come from the queue (new mail, and every stored envelope at start);
 * due ones go back to the queue in fair batches; results come back as done or retry. Nothing
 * in flight is scheduled twice, and no more than `max-inflight` are out at once.
 */
import type { Role } from '../bus/bus.js';
import { PEERS, type Res, type SchedulerView } from '../bus/messages.js';
import type { Timer } from '../clock.js';
import type { RoleContext } from '../daemon/context.js';
import { log } from '../log.js';
import type { Envelope } from '../queue/envelope.js';
import { isEvpid, isMsgid } from '../queue/envelope.js';
import type { SchedulerBackend, SchedulerEntry } from './backend.js';
import { nextTry } from './backoff.js';
import { allKinds, setPaused } from './kinds.js';
import { createSchedulerBackend } from './registry.js';
import { trace } from '../trace.js';

const DEFAULT_MAX_INFLIGHT = 5000;
const DEFAULT_MAX_SCHEDULE = 100;
const DEFAULT_MAX_EVP_BATCH = 256;
/** A held envelope comes back by itself after this long, should its relay never release it (an mta restart). */
const HOLD_MAX_SEC = 300;

export function createSchedulerRole(ctx: RoleContext): Role<'scheduler'> {
  const backend: SchedulerBackend = createSchedulerBackend(ctx.backends.scheduler, ctx.spool);
  const limits = ctx.config.schedulerLimits;
  const maxInflight = limits['max-inflight'] ?? DEFAULT_MAX_INFLIGHT;
  const maxSchedule = limits['max-schedule'] ?? DEFAULT_MAX_SCHEDULE;
  // a message's recipients at one destination leave together, up to this many (OpenSMTPD's name)
  const perMessage = limits['max-evp-batch-size'] ?? DEFAULT_MAX_EVP_BATCH;
  const kinds = allKinds();
  let inflight = 0;
  /** Envelopes the mta sent back because a relay's task list was full, by relay (its hold queue). */
  const held = new Map<string, string[]>();
  let timer: Timer | null = null;
  let timerAt = Infinity;
  let running = false;
  const nowSec = () => Math.floor(ctx.clock.now() / 1000);
  const notify = <T extends 'scheduler.envelope.schedule' | 'scheduler.envelope.expire' | 'scheduler.envelope.warn' | 'scheduler.envelope.remove'>(type: T, req: Parameters<typeof ctx.bus.notify<T>>[1]) =>
    ctx.bus.notify(type, req, () => undefined);
  const count = (key: string, by: number) => {
    if (by > 0) ctx.bus.notify('stat.increment', { key, by }, () => undefined);
  };
  const gauge = () => {
    ctx.bus.notify('stat.set', { key: 'scheduler.envelope', value: backend.size }, () => undefined);
    ctx.bus.notify('stat.set', { key: 'scheduler.envelope.inflight', value: inflight }, () => undefined);
  };

  const entryOf = (e: Envelope): SchedulerEntry => ({
    evpid: e.id,
    msgid: e.msgid,
    kind: e.kind,
    queueKey: `${e.action}|${e.rcpt.slice(e.rcpt.lastIndexOf('@') + 1).toLowerCase()}`,
    createdAt: e.createdAt,
    expiresAt: e.createdAt + e.ttl,
    tries: e.tries,
    lastTry: e.lastTry,
    lastWarn: e.lastWarn,
    // new mail is tried at once; reloaded mail when its retry falls due
    nextTry: e.tries === 0 ? e.createdAt : nextTry(e.kind, e.createdAt, e.tries, Math.max(e.lastTry, e.createdAt)),
    state: 'pending',
    suspended: false,
  });

  /** One round: hand out what is due, then sleep until the next event. */
  function run(): void {
    timer = null;
    timerAt = Infinity;
    if (!running) return;
    const now = nowSec();
    const room = Math.max(0, Math.min(maxSchedule, maxInflight - inflight));
    const batch = backend.batch(now, room, kinds, ctx.config.bounce.warnIntervals, perMessage);
    count('scheduler.envelope.expired', batch.expire.length);
    trace('scheduler', null, 'scheduler', { deliver: batch.deliver.length, expire: batch.expire.length, warn: batch.warn.length, inflight, next: batch.nextWakeAt });
    for (const evpid of batch.expire) {
      setState(evpid, 'inflight');
      log('info', evpid, 'scheduler', 'expire', { evpid });
      notify('scheduler.envelope.expire', { evpid });
    }
    for (const evpid of batch.warn) notify('scheduler.envelope.warn', { evpid });
    for (const evpid of batch.deliver) setState(evpid, 'inflight');
    if (batch.deliver.length) notify('scheduler.envelope.schedule', { evpids: batch.deliver });
    gauge();
    // more is due but there was no room: the next done/retry wakes us
    if (batch.nextWakeAt <= now && inflight >= maxInflight) return;
    arm(batch.nextWakeAt <= now ? ctx.clock.now() : batch.nextWakeAt * 1000);
  }

  function arm(atMs: number): void {
    if (!running || atMs === Infinity || atMs >= timerAt) return;
    timer?.cancel();
    timerAt = atMs;
    timer = ctx.clock.setTimer(Math.max(0, atMs - ctx.clock.now()), run);
  }

  const soon = () => arm(ctx.clock.now());

  function setState(evpid: string, state: 'pending' | 'inflight'): void {
    const e = backend.get(evpid);
    if (!e || e.state === state) return;
    inflight += state === 'inflight' ? 1 : -1;
    backend.update({ ...e, state });
  }

  /**
   * Every envelope that enters or leaves the scheduler is counted, as control_digest_update()
   * counts the increments and decrements of scheduler.envelope: monitor's enq and deq.
   */
  function insert(e: Envelope): void {
    backend.insert(entryOf(e));
    count('scheduler.envelope.enqueued', 1);
  }

  function remove(evpid: string): void {
    if (!backend.get(evpid)) return;
    backend.remove(evpid);
    count('scheduler.envelope.dequeued', 1);
  }

  function targets(target: string): SchedulerEntry[] {
    if (target === 'all') return backend.list();
    if (isEvpid(target)) return backend.get(target) ? [backend.get(target)!] : [];
    if (isMsgid(target)) return backend.list(target);
    throw new Error(`invalid envelope or message id: ${target}`);
  }

  function command(op: 'schedule' | 'remove' | 'suspend' | 'resume', target: string): Res<'control.scheduler.command'> {
    let list = targets(target);
    // scheduler_ram_schedule: an envelope out for delivery is not rescheduled, nor counted
    if (op === 'schedule') list = list.filter((e) => e.state !== 'inflight');
    for (const e of list) {
      if (op === 'remove') {
        if (e.state === 'inflight') continue;
        remove(e.evpid);
        count('scheduler.envelope.removed', 1);
        notify('scheduler.envelope.remove', { evpid: e.evpid });
      } else if (op === 'schedule') {
        // due now, but a paused envelope stays paused (rq_envelope_schedule keeps
        // RQ_ENVELOPE_SUSPEND): `resume envelope` is what sends it, at once
        backend.update({ ...e, nextTry: nowSec() });
      } else {
        backend.update({ ...e, suspended: op === 'suspend' });
      }
    }
    log('info', null, 'scheduler', 'control', { op, target, envelopes: list.length });
    soon();
    gauge();
    return { count: list.length };
  }

  const view = (e: SchedulerEntry): SchedulerView => ({
    evpid: e.evpid, state: e.state, suspended: e.suspended, tries: e.tries, lastTry: e.lastTry, nextTry: e.nextTry, expiresAt: e.expiresAt,
  });

  return {
    name: 'scheduler',
    peers: PEERS.scheduler,
    handlers: {
      'queue.envelope.submit': ({ envelopes }) => {
        for (const e of envelopes) if (!backend.get(e.id)) insert(e);
        soon();
        gauge();
      },
      'queue.envelope.done': ({ evpid }) => {
        const e = backend.get(evpid);
        if (e?.state === 'inflight') inflight--;
        remove(evpid);
        soon();
        gauge();
      },
      'queue.envelope.retry': ({ evpid, tries, lastTry }) => {
        const e = backend.get(evpid);
        if (!e) return;
        if (e.state === 'inflight') inflight--;
        const at = nextTry(e.kind, e.createdAt, tries, Math.max(lastTry, nowSec()));
        backend.update({ ...e, state: 'pending', tries, lastTry, nextTry: at });
        soon();
        gauge();
      },
      'queue.envelope.hold': ({ evpids, holdq }) => {
        const list = held.get(holdq) ?? [];
        for (const evpid of evpids) {
          const e = backend.get(evpid);
          if (!e) continue;
          if (e.state === 'inflight') inflight--;
          backend.update({ ...e, state: 'pending', nextTry: Math.min(e.expiresAt, nowSec() + HOLD_MAX_SEC) });
          list.push(evpid);
        }
        held.set(holdq, list);
        soon();
        gauge();
      },
      'mta.holdq.release': ({ holdq, count }) => {
        const list = held.get(holdq) ?? [];
        const released = count > 0 ? list.splice(0, count) : list.splice(0);
        if (list.length === 0) held.delete(holdq);
        for (const evpid of released) {
          const e = backend.get(evpid);
          if (e?.state === 'pending') backend.update({ ...e, nextTry: nowSec() });
        }
        soon();
      },
      'control.scheduler.list': ({ msgid, evpids }) => ({
        entries: evpids ? evpids.flatMap((id) => backend.get(id) ?? []).map(view) : backend.list(msgid).map(view),
      }),
      'control.scheduler.command': ({ op, target }) => command(op, target),
      'control.scheduler.pause': ({ kind, paused }) => {
        const changed = setPaused(kinds, kind, paused);
        if (changed) log('info', null, 'scheduler', 'control', { [kind]: paused ? 'paused' : 'resumed' });
        soon();
        return { changed };
      },
      'control.scheduler.status': () => ({
        mda: kinds.has('mda') ? 'running' : 'paused',
        mta: kinds.has('mta') ? 'running' : 'paused',
        envelopes: backend.size,
        inflight,
      }),
    },
    async start() {
      running = true;
      soon();
    },
    async stop() {
      running = false;
      timer?.cancel();
      timer = null;
      backend.close?.();
    },
  };
}
