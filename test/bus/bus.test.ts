/** The bus routes by message type, refuses undeclared peers and copies payloads when asked. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus, type Role } from '../../src/bus/bus.js';
import type { Handlers, RoleName } from '../../src/bus/messages.js';

function role<R extends RoleName>(name: R, peers: RoleName[], handlers: Partial<Handlers<R>>): Role<R> {
  return { name, peers, handlers: handlers as Handlers<R>, start: async () => {}, stop: async () => {} };
}

test('a request reaches the role its type routes to and the reply comes back', async () => {
  const bus = new Bus();
  const seen: string[] = [];
  bus.register(role('smtp', ['queue'], {}));
  bus.register(role('queue', [], {
    'smtp.message.create': (req, from) => {
      seen.push(`${from}:${req.sessionId}`);
      return { msgid: '0badcafe', path: '/tmp/x' };
    },
  }));
  const res = await bus.request('smtp', 'smtp.message.create', { sessionId: 'abc' });
  assert.deepEqual(res, { msgid: '0badcafe', path: '/tmp/x' });
  assert.deepEqual(seen, ['smtp:abc']);
});

test('a role may not message a role it did not declare as a peer', async () => {
  const bus = new Bus();
  bus.register(role('smtp', ['lka'], {}));
  bus.register(role('queue', [], { 'smtp.message.create': () => ({ msgid: '00000001', path: '' }) }));
  await assert.rejects(bus.request('smtp', 'smtp.message.create', { sessionId: 'x' }), /smtp may not message queue/);
});

test('a missing target role or handler is an error, not a silent drop', async () => {
  const bus = new Bus();
  bus.register(role('smtp', ['queue', 'lka'], {}));
  await assert.rejects(bus.request('smtp', 'smtp.message.create', { sessionId: 'x' }), /no role queue/);
  bus.register(role('queue', [], {}));
  await assert.rejects(bus.request('smtp', 'smtp.message.create', { sessionId: 'x' }), /no handler/);
  assert.throws(() => bus.register(role('queue', [], {})), /registered twice/);
});

test('handlers never run inside the caller stack', async () => {
  const bus = new Bus();
  let ran = false;
  bus.register(role('queue', ['stat'], {}));
  bus.register(role('stat', [], { 'stat.increment': () => { ran = true; } }));
  const p = bus.request('queue', 'stat.increment', { key: 'k' });
  assert.equal(ran, false);
  await p;
  assert.equal(ran, true);
});

test('with checkSerializable, payloads are copied as across a process boundary', async () => {
  const bus = new Bus({ checkSerializable: true });
  const sent = { key: 'k', labels: { a: 'b' } };
  let got: unknown;
  bus.register(role('queue', ['stat'], {}));
  bus.register(role('stat', [], { 'stat.increment': (req) => { got = req; } }));
  await bus.request('queue', 'stat.increment', sent);
  assert.deepEqual(got, sent);
  assert.notEqual(got, sent);
  await assert.rejects(
    bus.request('queue', 'stat.increment', { key: 'k', labels: { f: (() => 1) as unknown as string } }),
    /could not be cloned/,
  );
});
