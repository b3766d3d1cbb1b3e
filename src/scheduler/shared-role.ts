/**
 * The scheduler role over a shared store (`-B scheduler=postgres`): instead of keeping the
 * schedule in memory, each round claims what is due from the store under this node's lease,
 * hands it to the queue as the local scheduler does, renews the leases while the deliveries run,
 * and releases each envelope with its next try (or sees the queue delete it). Rounds run when
 * the local queue or another node (LISTEN/NOTIFY) adds mail, when the next envelope or lease is
 * due, and at least every poll interval. `pause mta` pauses this node only; the envelope commands
 * act on the whole store, so on every node.
 */
import type { Role } from '../bus/bus.js';
import { PEERS, type Res, type SchedulerView } from '../bus/messages.js';
import type { Timer } from '../clock.js';
import type { RoleContext } from '../daemon/context.js';
import { log } from '../log.js';
import { sharedQueueSettings } from '../queue/pg-pool.js';
import type { Claim, SharedSchedulerBackend } from './backend.js';
import { nextTry } from './backoff.js';
import { allKinds, setPaused } from './kinds.js';
import { createSharedSchedulerBackend } from './registry.js';

const DEFAULT_MAX_INFLIGHT = 5000;
const DEFAULT_MAX_SCHEDULE = 100;
/** A round runs at least this often, to find mail whose lease ran out on a node that died. */
const MAX_POLL_MS = 30_000;
/** Envelopes a full relay sent back wait this long in the store (any node may take them then). */
const HOLD_SEC = 10;
/** After the store failed, the next round waits this long. */
const RETRY_MS = 2_000;

export function createSharedSchedulerRole(ctx: RoleContext): Role<'scheduler'> {
  const settings = sharedQueueSettings(ctx.config.queue, ctx.spool);
  const store: SharedSchedulerBackend = createSharedSchedulerBackend(ctx.backends.scheduler, settings);
  const limits = ctx.config.schedulerLimits;
  const maxInflight = limits['max-inflight'] ?? DEFAULT_MAX_INFLIGHT;
  const maxSchedule = limits['max-schedule'] ?? DEFAULT_MAX_SCHEDULE;
  const kinds = allKinds();
  // renewed a few times per lease, so one slow renewal does not lose it
  const renewMs = Math.max(250, (settings.lease * 1000) / 3);
  const pollMs = Math.min(MAX_POLL_MS, Math.max(500, (settings.lease * 1000) / 2));
  /** What this node has out: claimed and not yet done or released. */
  const held = new Map<string, Claim>();
  let timer: Timer | null = null;
  let timerAt = Infinity;
  let renewTimer: Timer | null = null;
  let running = false;
  let round: Promise<void> | null = null;
  let again = false;
  const nowSec = () => Math.floor(ctx.clock.now() / 1000);
  const count = (key: string, by: number) => {
    if (by > 0) ctx.bus.notify('stat.increment', { key, by }, () => undefined);
  };
  const gauge = () => ctx.bus.notify('stat.set', { key: 'scheduler.envelope.inflight', value: held.size }, () => undefined);
  const storeFailed = (what: string) => (err: Error) => log('warn', null, 'scheduler', 'queue-database', { op: what, error: err.message });

  /** One round at a time; a wake during a round makes another one follow it. */
  function soon(): void {
    if (!running) return;
    if (round) {
      again = true;
      return;
    }
    timer?.cancel();
    timer = null;
    timerAt = Infinity;
    round = run()
      .catch((err: Error) => {
        storeFailed('claim')(err);
        arm(ctx.clock.now() + RETRY_MS);
      })
      .finally(() => {
        round = null;
        if (again) {
          again = false;
          soon();
        }
      });
  }

  async function run(): Promise<void> {
    const now = nowSec();
    const room = Math.max(0, Math.min(maxSchedule, maxInflight - held.size));
    const { deliver, expire, warn } = await store.claim(now, room, kinds, ctx.config.bounce.warnIntervals);
    for (const c of [...deliver, ...expire]) {
      held.set(c.evpid, c);
      if (c.takenFrom && c.takenFrom !== settings.node) log('info', c.evpid, 'scheduler', 'lease', { evpid: c.evpid, from: c.takenFrom, reason: 'lease-expired' });
    }
    count('scheduler.envelope.expired', expire.length);
    for (const c of expire) {
      log('info', c.evpid, 'scheduler', 'expire', { evpid: c.evpid });
      ctx.bus.notify('scheduler.envelope.expire', { evpid: c.evpid }, () => undefined);
    }
    for (const evpid of warn) ctx.bus.notify('scheduler.envelope.warn', { evpid }, () => undefined);
    if (deliver.length) ctx.bus.notify('scheduler.envelope.schedule', { evpids: deliver.map((c) => c.evpid) }, () => undefined);
    gauge();
    // a full batch: more may be due at once
    if (deliver.length + expire.length >= room && room > 0) return void (again = true);
    const next = await store.nextWakeAt(now, kinds);
    arm(Math.min(ctx.clock.now() + pollMs, Math.max((now + 1) * 1000, next * 1000)));
  }

  function arm(atMs: number): void {
    if (!running || atMs >= timerAt) return;
    timer?.cancel();
    timerAt = atMs;
    timer = ctx.clock.setTimer(Math.max(0, atMs - ctx.clock.now()), () => {
      timer = null;
      timerAt = Infinity;
      soon();
    });
  }

  function renew(): void {
    renewTimer = ctx.clock.setTimer(renewMs, renew);
    if (held.size === 0) return;
    const ids = [...held.keys()];
    store.renew(nowSec(), ids).then((kept) => {
      if (kept.length === ids.length) return;
      const still = new Set(kept);
      // delivered and deleted, or lost to another node (this one could not renew in time): at least once
      for (const evpid of ids) if (!still.has(evpid) && held.has(evpid)) log('debug', evpid, 'scheduler', 'lease', { evpid, reason: 'not-held' });
    }, storeFailed('renew'));
  }

  const view = (e: Awaited<ReturnType<SharedSchedulerBackend['list']>>[number]): SchedulerView => ({
    evpid: e.evpid, state: e.state, suspended: e.suspended, tries: e.tries, lastTry: e.lastTry, nextTry: e.nextTry, expiresAt: e.expiresAt,
    ...(e.holder ? { holder: e.holder } : {}),
  });

  async function command(op: 'schedule' | 'remove' | 'suspend' | 'resume', target: string): Promise<Res<'control.scheduler.command'>> {
    const evpids = await store.command(nowSec(), op, target);
    // leased to this node for the removal: if the queue fails to delete one, its lease runs out
    if (op === 'remove') {
      count('scheduler.envelope.removed', evpids.length);
      for (const evpid of evpids) ctx.bus.notify('scheduler.envelope.remove', { evpid }, () => undefined);
    }
    log('info', null, 'scheduler', 'control', { op, target, envelopes: evpids.length, node: settings.node });
    soon();
    return { count: evpids.length };
  }

  return {
    name: 'scheduler',
    peers: PEERS.scheduler,
    handlers: {
      // the queue stored them already, with their due time: only a round is wanted (monitor's
      // enq and deq count what this node took in and what it finished)
      'queue.envelope.submit': ({ envelopes }) => {
        count('scheduler.envelope.enqueued', envelopes.length);
        soon();
      },
      'queue.envelope.done': ({ evpid }) => {
        if (held.has(evpid)) count('scheduler.envelope.dequeued', 1);
        held.delete(evpid);
        gauge();
        soon();
      },
      'queue.envelope.retry': ({ evpid, tries, lastTry }) => {
        const c = held.get(evpid);
        held.delete(evpid);
        gauge();
        if (!c) return;
        const t = Math.max(tries, c.tries);
        const at = nextTry(c.kind, c.createdAt, t, Math.max(lastTry, nowSec()));
        // not released (the database is away): the lease runs out and the envelope is tried then
        store.release(evpid, { tries: t, lastTry, nextTry: at }).then(() => soon(), storeFailed('release'));
      },
      // a relay of this node is full (task-hiwat): back to the store for a little while, where
      // another node may take them, without counting a try
      'queue.envelope.hold': ({ evpids }) => {
        for (const evpid of evpids) {
          const c = held.get(evpid);
          held.delete(evpid);
          if (c) store.release(evpid, { tries: c.tries, lastTry: nowSec(), nextTry: nowSec() + HOLD_SEC }).catch(storeFailed('release'));
        }
        gauge();
      },
      'mta.holdq.release': () => soon(),
      'control.scheduler.list': async ({ msgid, evpids }) => {
        const wanted = evpids && new Set(evpids);
        return { entries: (await store.list(nowSec(), msgid)).filter((e) => !wanted || wanted.has(e.evpid)).map(view) };
      },
      'control.scheduler.command': ({ op, target }) => command(op, target),
      'control.scheduler.pause': ({ kind, paused }) => {
        const changed = setPaused(kinds, kind, paused);
        if (changed) log('info', null, 'scheduler', 'control', { [kind]: paused ? 'paused' : 'resumed', node: settings.node });
        soon();
        return { changed };
      },
      'control.scheduler.status': async () => ({
        mda: kinds.has('mda') ? 'running' : 'paused',
        mta: kinds.has('mta') ? 'running' : 'paused',
        envelopes: await store.count(),
        inflight: held.size,
      }),
    },
    async start() {
      await store.open();
      store.onWake(soon);
      // the database may be away: this node's old leases then run out instead
      const released = await store.releaseAll().catch((err: Error) => void storeFailed('release')(err));
      log('info', null, 'scheduler', 'queue-load', { backend: ctx.backends.scheduler, node: settings.node, lease: settings.lease, released });
      running = true;
      renewTimer = ctx.clock.setTimer(renewMs, renew);
      soon();
    },
    async stop() {
      running = false;
      timer?.cancel();
      renewTimer?.cancel();
      timer = renewTimer = null;
      await round;
      await store.close();
    },
  };
}
