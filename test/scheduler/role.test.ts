/** The scheduler role on a real bus and a fake clock, against a scripted queue: days of retries walked in milliseconds. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus, type Role } from '../../src/bus/bus.js';
import type { Handlers, RoleName } from '../../src/bus/messages.js';
import { FakeClock } from '../../src/clock.js';
import { emptyConfig } from '../../src/config/defaults.js';
import { configureLog } from '../../src/log.js';
import type { Envelope } from '../../src/queue/envelope.js';
import { createSchedulerRole } from '../../src/scheduler/role.js';

const logged: string[] = [];
configureLog({ sink: { write: (l) => void logged.push(l) }, level: 'info' });

const DAY = 86400;

function envelope(n: number, createdAt: number, over: Partial<Envelope> = {}): Envelope {
  const id = `0000000${n % 10}${n.toString(16).padStart(8, '0')}`;
  return {
    id, msgid: id.slice(0, 8), kind: 'mta', action: 'relay', hostname: 'mx.test', helo: 'c.test', clientAddress: '127.0.0.1',
    sender: 'a@c.test', rcpt: `r${n}@dest.example`, origRcpt: `r${n}@dest.example`, dsn: {}, smtputf8: false, junk: false,
    createdAt, ttl: 4 * DAY, tries: 0, lastTry: 0, lastWarn: 0, ...over,
  };
}

/** A role with only the handlers a test needs; the bus checks the rest at run time. */
function fakeRole<R extends RoleName>(name: R, peers: RoleName[], handlers: Partial<Handlers<R>>): Role<R> {
  return { name, peers, handlers: handlers as Handlers<R>, start: async () => {}, stop: async () => {} };
}

interface Seen {
  /** Sizes of the schedule messages, in order. */
  batches: number[];
  scheduled: { at: number; evpid: string }[];
  warned: { at: number; evpid: string }[];
  expired: { at: number; evpid: string }[];
}

/**
 * A scheduler, a queue that fails every delivery (or holds it, when `fail` is false), a control
 * role to send admin commands from, and a stat sink.
 */
async function setup(opts: { fail: boolean; limits?: Record<string, number> }) {
  const clock = new FakeClock();
  const bus = new Bus({ checkSerializable: true });
  const config = emptyConfig('smtpd.conf');
  if (opts.limits) config.schedulerLimits = { ...config.schedulerLimits, ...opts.limits };
  const tries = new Map<string, number>();
  const seen: Seen = { batches: [], scheduled: [], warned: [], expired: [] };
  const nowSec = () => Math.floor(clock.now() / 1000);
  const queueBus = bus.endpoint('queue');
  bus.register(fakeRole('queue', ['scheduler'], {
    'scheduler.envelope.schedule': ({ evpids }) => {
      seen.batches.push(evpids.length);
      for (const evpid of evpids) {
        seen.scheduled.push({ at: nowSec(), evpid });
        const n = (tries.get(evpid) ?? 0) + 1;
        tries.set(evpid, n);
        if (opts.fail) queueBus.notify('queue.envelope.retry', { evpid, tries: n, lastTry: nowSec() });
      }
    },
    'scheduler.envelope.warn': ({ evpid }) => void seen.warned.push({ at: nowSec(), evpid }),
    'scheduler.envelope.expire': ({ evpid }) => {
      seen.expired.push({ at: nowSec(), evpid });
      // the real queue bounces and deletes the envelope, then says so
      queueBus.notify('queue.envelope.done', { evpid });
    },
    'scheduler.envelope.remove': () => undefined,
  }));
  bus.register(fakeRole('stat', [], { 'stat.set': () => undefined, 'stat.increment': () => undefined, 'stat.decrement': () => undefined }));
  bus.register(fakeRole('control', ['scheduler'], {}));
  const role = createSchedulerRole({
    config, bus: bus.endpoint('scheduler'), clock, spool: '/nonexistent', serverName: 'mx.test',
    backends: { queue: 'ram', scheduler: 'ramqueue', stat: 'ram' }, verbose: false,
  });
  bus.register(role);
  await role.start();
  const control = bus.endpoint('control');
  const submit = (envs: Envelope[]) => queueBus.request('queue.envelope.submit', { envelopes: envs });
  return { clock, role, seen, submit, control, queueBus, bus, start: nowSec() };
}

/** Move the fake clock in steps, letting the bus messages each timer starts settle in between. */
async function walk(clock: FakeClock, seconds: number, stepSeconds = 3600): Promise<void> {
  for (let done = 0; done < seconds; done += stepSeconds) await clock.advance(Math.min(stepSeconds, seconds - done) * 1000);
}

test('a message failing every try: retried at the backoff times, warned once at 4 h, expired at 4 days', async () => {
  const s = await setup({ fail: true });
  try {
    const c = s.start;
    const env = envelope(1, c);
    await s.submit([env]);
    await walk(s.clock, 5 * DAY);
    const times = s.seen.scheduled.map((x) => x.at - c);
    // OpenSMTPD's schedule for remote mail: 0, then 400 s × k² while short of the ttl
    const want = [0];
    for (let k = 1; 400 * k * k < 4 * DAY; k++) want.push(400 * k * k);
    assert.deepEqual(times, want);
    assert.deepEqual(s.seen.warned, [{ at: c + 4 * 3600, evpid: env.id }]);
    assert.deepEqual(s.seen.expired, [{ at: c + 4 * DAY, evpid: env.id }]);
    assert.ok(logged.some((l) => l.includes('expire') && l.includes(env.id)));
    const status = await s.control.request('control.scheduler.status', {});
    assert.deepEqual(status, { mda: 'running', mta: 'running', envelopes: 0, inflight: 0 });
  } finally {
    await s.role.stop();
  }
});

test('local deliveries retry on the 10 s base, and a reloaded envelope resumes its schedule', async () => {
  const s = await setup({ fail: true });
  try {
    const c = s.start;
    await s.submit([envelope(2, c, { kind: 'mda', action: 'local' })]);
    // reloaded: created 60 s ago, 3 tries failed, the last at +30 s; next at creation + 10 × 4², then 10 × 5²
    await s.submit([envelope(3, c - 60, { kind: 'mda', action: 'local', tries: 3, lastTry: c + 30 })]);
    await walk(s.clock, 200, 10);
    const of = (evpid: string) => s.seen.scheduled.filter((x) => x.evpid === evpid).map((x) => x.at - c);
    assert.deepEqual(of(envelope(2, c).id), [0, 10, 40, 90, 160]);
    assert.deepEqual(of(envelope(3, c).id), [100, 190]);
  } finally {
    await s.role.stop();
  }
});

test('max-inflight bounds what is out at once; a done result makes room', async () => {
  const s = await setup({ fail: false, limits: { 'max-inflight': 2 } });
  try {
    const envs = [1, 2, 3, 4, 5].map((n) => envelope(n, s.start));
    await s.submit(envs);
    await walk(s.clock, 60, 1);
    assert.equal(s.seen.scheduled.length, 2);
    assert.equal((await s.control.request('control.scheduler.status', {})).inflight, 2);
    s.queueBus.notify('queue.envelope.done', { evpid: s.seen.scheduled[0]!.evpid });
    await walk(s.clock, 60, 1);
    assert.equal(s.seen.scheduled.length, 3);
    // nothing was handed out twice
    assert.equal(new Set(s.seen.scheduled.map((x) => x.evpid)).size, 3);
  } finally {
    await s.role.stop();
  }
});

test('an envelope the mta held for a full relay waits, out of flight, until the mta releases its hold queue', async () => {
  const s = await setup({ fail: false });
  try {
    s.bus.register(fakeRole('mta', ['scheduler'], {}));
    const mta = s.bus.endpoint('mta');
    await s.submit([envelope(1, s.start)]);
    await walk(s.clock, 1, 1);
    assert.equal(s.seen.scheduled.length, 1);
    s.queueBus.notify('queue.envelope.hold', { evpids: [envelope(1, s.start).id], holdq: 'relay-a' });
    await walk(s.clock, 120, 1);
    assert.equal(s.seen.scheduled.length, 1, 'held: not tried again by itself within two minutes');
    assert.equal((await s.control.request('control.scheduler.status', {})).inflight, 0, 'a held envelope is not in flight');
    mta.notify('mta.holdq.release', { holdq: 'relay-a', count: 0 });
    await walk(s.clock, 3, 1);
    assert.equal(s.seen.scheduled.length, 2, 'released: handed out again at once');
  } finally {
    await s.role.stop();
  }
});

test('max-schedule cuts a large backlog into batches, and every envelope goes out once', async () => {
  const s = await setup({ fail: false, limits: { 'max-schedule': 10 } });
  try {
    // two destinations: the small one is not kept waiting behind the big one
    const envs = Array.from({ length: 25 }, (_, n) => envelope(n, s.start, { rcpt: n === 24 ? 'x@small.example' : `r${n}@big.example` }));
    await s.submit(envs);
    await walk(s.clock, 1, 1);
    // whole messages (2 or 3 recipients each here) until a batch reaches 10
    assert.equal(s.seen.batches.length, 3);
    assert.ok(s.seen.batches.slice(0, 2).every((n) => n >= 10 && n <= 12), String(s.seen.batches));
    assert.equal(new Set(s.seen.scheduled.map((x) => x.evpid)).size, 25);
    assert.ok(s.seen.scheduled.slice(0, s.seen.batches[0]).some((x) => x.evpid === envs[24]!.id));
    // no message's recipients at one destination were split between batches
    let at = 0;
    const batchOf = new Map<string, number>();
    s.seen.batches.forEach((n, b) => s.seen.scheduled.slice(at, (at += n)).forEach((x) => {
      const key = `${x.evpid.slice(0, 8)}|${envs.find((e) => e.id === x.evpid)!.rcpt.split('@')[1]}`;
      assert.equal(batchOf.get(key) ?? b, b, key);
      batchOf.set(key, b);
    }));
  } finally {
    await s.role.stop();
  }
});

test('admin commands: pause mta, suspend and resume, schedule now, remove', async () => {
  const s = await setup({ fail: true });
  try {
    const c = s.start;
    assert.deepEqual(await s.control.request('control.scheduler.pause', { kind: 'mta', paused: true }), { changed: true });
    const a = envelope(1, c);
    const b = envelope(2, c, { msgid: '00000002', id: '0000000200000002' });
    await s.submit([a, b]);
    await walk(s.clock, 3600, 60);
    assert.equal(s.seen.scheduled.length, 0);
    await s.control.request('control.scheduler.command', { op: 'suspend', target: b.msgid });
    await s.control.request('control.scheduler.pause', { kind: 'mta', paused: false });
    await walk(s.clock, 1, 1);
    assert.deepEqual(s.seen.scheduled.map((x) => x.evpid), [a.id]);
    // `schedule` brings a waiting envelope forward to now; a suspended one is counted but stays paused
    assert.deepEqual(await s.control.request('control.scheduler.command', { op: 'schedule', target: 'all' }), { count: 2 });
    await walk(s.clock, 1, 1);
    assert.deepEqual(s.seen.scheduled.map((x) => x.evpid), [a.id, a.id]);
    await s.control.request('control.scheduler.command', { op: 'resume', target: b.msgid });
    await walk(s.clock, 1, 1);
    assert.deepEqual(s.seen.scheduled.map((x) => x.evpid), [a.id, a.id, b.id]);
    const listed = await s.control.request('control.scheduler.list', { msgid: b.msgid });
    assert.equal(listed.entries.length, 1);
    assert.equal(listed.entries[0]!.tries, 1);
    assert.deepEqual(await s.control.request('control.scheduler.command', { op: 'remove', target: a.id }), { count: 1 });
    assert.equal((await s.control.request('control.scheduler.status', {})).envelopes, 1);
    await assert.rejects(s.control.request('control.scheduler.command', { op: 'remove', target: 'nonsense' }), /invalid envelope or message id/);
  } finally {
    await s.role.stop();
  }
});

test('schedule on a paused envelope leaves it paused; resume then sends it at once (rq_envelope_schedule keeps RQ_ENVELOPE_SUSPEND)', async () => {
  const s = await setup({ fail: true });
  try {
    const env = envelope(7, s.start);
    await s.submit([env]);
    await walk(s.clock, 1, 1);
    assert.equal(s.seen.scheduled.length, 1);
    assert.deepEqual(await s.control.request('control.scheduler.command', { op: 'suspend', target: env.id }), { count: 1 });
    // scheduler_ram_schedule counts the paused envelope as scheduled...
    assert.deepEqual(await s.control.request('control.scheduler.command', { op: 'schedule', target: env.msgid }), { count: 1 });
    await walk(s.clock, 600, 10);
    // ...but it is not tried, and `show queue` still says suspend
    assert.equal(s.seen.scheduled.length, 1);
    const { entries } = await s.control.request('control.scheduler.list', { msgid: env.msgid });
    assert.equal(entries[0]!.suspended, true);
    // its retry was due at +400 s; scheduled by hand, it goes the moment it is resumed
    await s.control.request('control.scheduler.command', { op: 'resume', target: env.id });
    await walk(s.clock, 1, 1);
    assert.equal(s.seen.scheduled.length, 2);
  } finally {
    await s.role.stop();
  }
});
