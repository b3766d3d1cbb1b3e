/** The mda role on a real bus: answers the queue, logs OpenSMTPD's delivery line, counts, limits. */
import { test } from 'node:test';
import { inlineRef } from './helpers.js';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Bus, type Role } from '../../src/bus/bus.js';
import type { Handlers, RoleName } from '../../src/bus/messages.js';
import { FakeClock } from '../../src/clock.js';
import type { RoleContext } from '../../src/daemon/context.js';
import { configureLog } from '../../src/log.js';
import { SessionLimiter } from '../../src/mda/limits.js';
import { createMdaRole } from '../../src/mda/role.js';
import { action, config, envelope, MESSAGE, ownedDir, tempDir, testUser, writeBody } from './helpers.js';

function role<R extends RoleName>(name: R, peers: RoleName[], handlers: Partial<Handlers<R>>): Role<R> {
  return { name, peers, handlers: handlers as Handlers<R>, start: async () => {}, stop: async () => {} };
}

test('queue.delivery.mda delivers, answers, logs the delivery line and counts', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const home = join(dir, 'home');
  const user = testUser(home);
  await ownedDir(home, user);
  const lines: string[] = [];
  configureLog({ sink: { write: (l) => lines.push(l) }, level: 'debug', timestamps: false });
  const bus = new Bus({ checkSerializable: true });
  const counted: string[] = [];
  const cfg = config([action({ kind: 'maildir', junk: false }), action({ kind: 'mda', command: 'exit 67' }, { name: 'bad' })]);
  // the delay field is computed from the role's clock: a fake one keeps it exact
  const clock = new FakeClock();
  const created = Math.floor(clock.now() / 1000) - 65;
  const ctx: RoleContext = {
    config: cfg, bus: bus.endpoint('mda'), clock, spool: dir,
    backends: { queue: 'fs', scheduler: 'ramqueue', stat: 'ram' }, serverName: 'mx.test', verbose: false,
  };
  const mda = createMdaRole(ctx);
  bus.register(mda);
  bus.register(role('queue', ['mda'], {}));
  bus.register(role('stat', [], {
    'stat.increment': (req) => { counted.push(`+${req.key}${req.labels ? ':' + req.labels['result'] : ''}`); },
    'stat.decrement': (req) => { counted.push(`-${req.key}`); },
  }));
  await mda.start();
  const body = await writeBody(dir, MESSAGE);
  const res = await bus.request('queue', 'queue.delivery.mda', { envelope: envelope({ user, createdAt: created }), body: await inlineRef(body) });
  assert.deepEqual(res, { result: 'ok', detail: 'Delivered' });
  assert.equal((await readdir(join(home, 'Maildir', 'new'))).length, 1);
  const line = lines.find((l) => l.includes(' mda delivery '));
  assert.equal(line, `0123456789abcdef mda delivery evpid=0123456789abcdef from=<alice@example.net> to=<bob@example.org> ` +
    `rcpt=<Bob@Example.org> user=${user.username} delay=1m5s result=Ok stat=Delivered`);
  const bad = await bus.request('queue', 'queue.delivery.mda', { envelope: envelope({ user, action: 'bad' }), body: await inlineRef(body) });
  assert.deepEqual(bad, { result: 'permfail', enhanced: '5.3.0', detail: 'user unknown: exited abnormally' });
  assert.ok(lines.some((l) => l.includes('result=PermFail stat="Error (user unknown: exited abnormally)"')), lines.join('\n'));
  await new Promise((r) => setImmediate(r));
  assert.ok(counted.includes('+mda.delivery:ok') && counted.includes('+mda.delivery:permfail'), counted.join(' '));
  assert.ok(counted.includes('+mda.running') && counted.includes('-mda.running'));
  const unknown = await bus.request('queue', 'queue.delivery.mda', { envelope: envelope({ user, action: 'nosuch' }), body: await inlineRef(body) });
  assert.equal(unknown.result, 'permfail');
  const nouser = await bus.request('queue', 'queue.delivery.mda', { envelope: envelope(), body: await inlineRef(body) });
  assert.deepEqual(nouser, { result: 'permfail', enhanced: '5.1.6', detail: 'Permanent failure in user lookup' });
  await mda.stop();
  const after = await bus.request('queue', 'queue.delivery.mda', { envelope: envelope({ user }), body: await inlineRef(body) });
  assert.equal(after.result, 'tempfail', 'a stopped role starts nothing new');
});

test('session limits: per user and in total, served in order', async () => {
  const lim = new SessionLimiter(3, 2);
  const a1 = await lim.acquire('a');
  const a2 = await lim.acquire('a');
  let a3got = false;
  const a3 = lim.acquire('a').then((r) => { a3got = true; return r; });
  const b1 = await lim.acquire('b');
  assert.equal(lim.active, 3);
  let c1got = false;
  const c1 = lim.acquire('c').then((r) => { c1got = true; return r; });
  await new Promise((r) => setImmediate(r));
  assert.equal(a3got, false, 'a has its two sessions');
  assert.equal(c1got, false, 'three in total');
  b1();
  const rc = await c1;
  assert.equal(a3got, false, 'the slot went to c, whose user had room');
  a1();
  const ra = await a3;
  assert.equal(lim.activeFor('a'), 2);
  a1();
  assert.equal(lim.activeFor('a'), 2, 'releasing twice gives back one slot only');
  a2(); ra(); rc();
  assert.equal(lim.active, 0);
  assert.equal(lim.pending, 0);
});
