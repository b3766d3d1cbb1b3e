/**
 * Issue 18: smtp workers accept on the parent's sockets (daemon/shared-listeners.ts) and ask
 * the parent to count each session in. A loopback client, exempt from the per-address cap,
 * takes one of a few places the worker leased under the overall cap, without a round trip;
 * every other client is counted by the parent; a pause or a ban reaches the leased places too.
 * The parent here is a fake that records what it is asked and answers as admission.ts would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../src/clock.js';
import { Admission } from '../../src/smtp/admission.js';
import { REPLIES } from '../../src/smtp/reply.js';
import { leases, WorkerAdmission, type Admitted, type ParentLink } from '../../src/smtp/worker-admission.js';

const LIMITS = { maxSessions: 10_000, maxSessionsPerAddress: 2, exemptLoopback: true };

/** A parent holding the real count; `grant` says how many places a lease gets (as reserve() would). */
function fakeParent(admission = new Admission(LIMITS)) {
  const asked: string[] = [];
  let conn = 0;
  const link: ParentLink = {
    async admit(address) {
      asked.push(`admit ${address}`);
      const reply = admission.admit(address);
      return reply ? { reply } : { conn: ++conn };
    },
    closed: (id) => void asked.push(`closed ${id}`),
    lease: (n) => void asked.push(`lease ${n}`),
    unlease: (n) => void asked.push(`unlease ${n}`),
  };
  return { link, asked, admission };
}

const served = (a: Admitted | Promise<Admitted>) => !(a instanceof Promise) && !('reply' in a);

test('a loopback client takes a leased place at once; the first one, before the lease, is counted by the parent', async () => {
  const p = fakeParent();
  const w = new WorkerAdmission(LIMITS, p.link);
  const first = w.admit('127.0.0.1');
  assert.ok(first instanceof Promise, 'no place leased yet: the parent is asked');
  assert.deepEqual(p.asked, ['lease 16', 'admit 127.0.0.1']);
  w.leased(16);
  const local = Array.from({ length: 16 }, () => w.admit('127.0.0.1'));
  assert.ok(local.every(served), 'sixteen sessions admitted here');
  assert.equal(p.asked.filter((a) => a.startsWith('admit')).length, 1);
  // below four places left it asked for more, once, before running out
  assert.equal(p.asked.filter((a) => a.startsWith('lease')).length, 2);
  assert.ok(w.admit('127.0.0.1') instanceof Promise, 'none left and the lease not answered: the parent counts it');
});

test('places come back to the worker as sessions end, and past 32 go back to the parent', () => {
  const p = fakeParent();
  const w = new WorkerAdmission(LIMITS, p.link);
  w.leased(30);
  const sessions = Array.from({ length: 30 }, () => w.admit('::1') as { release(): void });
  for (const s of sessions.slice(0, 2)) s.release();
  assert.ok(!p.asked.some((a) => a.startsWith('unlease')), 'two free places are kept');
  w.leased(16); // the lease asked for at four left
  for (const s of sessions.slice(2)) s.release();
  // 46 places in all: the 33rd free one sends 17 back (down to 16), the last 13 are kept
  assert.deepEqual(p.asked.filter((a) => a.startsWith('unlease')), ['unlease 17']);
  assert.equal(p.asked.filter((a) => a.startsWith('lease')).length, 1);
});

test('a client that is not exempt is always counted by the parent, which enforces its per-address cap', async () => {
  const p = fakeParent();
  const w = new WorkerAdmission(LIMITS, p.link);
  w.leased(16);
  const answers = await Promise.all([1, 2, 3].map(() => w.admit('192.0.2.7')));
  assert.deepEqual(p.asked, ['admit 192.0.2.7', 'admit 192.0.2.7', 'admit 192.0.2.7']);
  assert.deepEqual(answers.map((a) => ('reply' in a ? a.reply.code : 'ok')), ['ok', 'ok', 421]);
  (answers[0] as { release(): void }).release();
  assert.equal(p.asked.at(-1), 'closed 1', 'the end of a counted session goes to the parent');
});

test('while smtp is paused, or an address is banned, a leased place admits nobody', async () => {
  const clock = new FakeClock();
  const p = fakeParent();
  const w = new WorkerAdmission(LIMITS, p.link, clock);
  w.leased(16);
  w.pause(true);
  assert.deepEqual(w.admit('127.0.0.1'), { reply: REPLIES.paused });
  w.pause(false);
  assert.ok(served(w.admit('127.0.0.1')));
  w.ban('127.0.0.2', 60_000);
  assert.deepEqual(w.admit('127.0.0.2'), { reply: REPLIES.banned });
  assert.deepEqual(w.admit('::ffff:127.0.0.2'), { reply: REPLIES.banned });
  await clock.advance(60_001);
  assert.ok(served(w.admit('127.0.0.2')), 'the ban is over');
});

test('a parent with no place to spare is asked again only a second later', async () => {
  const clock = new FakeClock();
  const p = fakeParent();
  const w = new WorkerAdmission(LIMITS, p.link, clock);
  void w.admit('127.0.0.1');
  w.leased(0);
  void w.admit('127.0.0.1');
  void w.admit('127.0.0.1');
  assert.equal(p.asked.filter((a) => a.startsWith('lease')).length, 1);
  await clock.advance(1000);
  void w.admit('127.0.0.1');
  assert.equal(p.asked.filter((a) => a.startsWith('lease')).length, 2);
});

test('the parent reserves leased places under the overall cap, and leases none when the cap is small', () => {
  const a = new Admission({ maxSessions: 20, maxSessionsPerAddress: 5, exemptLoopback: true });
  assert.equal(a.reserve(16), 16);
  assert.equal(a.reserve(16), 4, 'only what is left under max-sessions');
  assert.deepEqual(a.admit('192.0.2.1'), REPLIES.tooManySessions, 'leased places count as open');
  a.unreserve(16);
  assert.equal(a.admit('192.0.2.1'), null);
  a.paused = true;
  assert.equal(a.reserve(16), 0, 'nothing is leased while paused');
  assert.equal(leases(10_000, 2), true);
  assert.equal(leases(200, 2), false, 'with a small cap every session is counted by the parent');
});

test('a worker started after a ban learns it: the bans in force with the time each has left', async () => {
  const clock = new FakeClock();
  const a = new Admission(LIMITS, clock);
  a.ban('192.0.2.9', 10_000);
  await clock.advance(4000);
  assert.deepEqual(a.bansLeft(), [['192.0.2.9', 6000]]);
  await clock.advance(6000);
  assert.deepEqual(a.bansLeft(), []);
});
