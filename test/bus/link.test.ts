/**
 * The bus between processes: frames survive any cut of the byte stream, and two buses joined
 * by a real socket pair carry requests, answers and notifications — with timeouts, waiting for
 * a peer that is not linked yet, failing what was pending when a peer goes, and cutting off a
 * peer that sends what its roles may not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { mkdtempSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bus, type Role } from '../../src/bus/bus.js';
import { encodeFrame, FrameDecoder, FrameError, MAX_FRAME } from '../../src/bus/frame.js';
import { SocketLink } from '../../src/bus/link.js';
import { FLUSH_MS } from '../../src/bus/stat-coalescer.js';
import { PEERS, type Handlers, type RoleName } from '../../src/bus/messages.js';

function role<R extends RoleName>(name: R, handlers: Partial<Handlers<R>>): Role<R> {
  return { name, peers: PEERS[name], handlers: handlers as Handlers<R>, start: async () => {}, stop: async () => {} };
}

async function socketPair(): Promise<[Socket, Socket]> {
  const path = join(mkdtempSync(join(tmpdir(), 'tsmtpd-bus-')), 's');
  const server = createServer();
  await new Promise<void>((r) => server.listen(path, r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const a = connect(path);
  await new Promise((r) => a.once('connect', r));
  const b = await accepted;
  server.close();
  return [a, b];
}

/** A worker's bus and the lka's, joined by a real socket pair; the lka's handlers are the test's. */
async function workerAndLka(handlers: Partial<Handlers<'lka'>>): Promise<{ smtp: Bus; close(): void }> {
  const [a, b] = await socketPair();
  const smtp = new Bus({ process: 'smtp.1' });
  const lka = new Bus({ process: 'lka' });
  smtp.register(role('smtp', {}));
  lka.register(role('lka', handlers));
  smtp.attach(new SocketLink('lka', a), ['lka']);
  lka.attach(new SocketLink('smtp.1', b), ['smtp']);
  return { smtp, close: () => a.destroy() };
}

function factsOf(sessionId: string) {
  return { sessionId, listener: 0, clientAddress: '192.0.2.1', clientPort: 1, localAddress: '', localPort: 25, tls: false, socket: false };
}

test('property: any sequence of messages survives any cut of the byte stream', () => {
  const value = fc.oneof(fc.jsonValue(), fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u)));
  fc.assert(fc.property(fc.array(value, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 10 }), (messages, cuts) => {
    const bytes = Buffer.concat(messages.map((m) => encodeFrame({ m })));
    const points = [...new Set(cuts.map((c) => (bytes.length ? c % bytes.length : 0)))].sort((x, y) => x - y);
    const decoder = new FrameDecoder();
    const out: unknown[] = [];
    let from = 0;
    for (const at of [...points, bytes.length]) {
      out.push(...decoder.push(bytes.subarray(from, at)));
      from = at;
    }
    assert.deepEqual(out, messages.map((m) => ({ m })));
  }));
});

test('a frame announced over the limit is refused before it is buffered', () => {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(MAX_FRAME + 1, 0);
  assert.throws(() => new FrameDecoder().push(head), FrameError);
});

test('requests, answers and notifications cross a socket pair, with the sender\'s process as origin', async () => {
  const seen: string[] = [];
  const { smtp, close } = await workerAndLka({
    'smtp.tx.reset': (req, from, origin) => void seen.push(`${from}@${origin.process}:${req.sessionId}`),
    'smtp.session.connect': () => ({ fcrdns: 'pass', rdns: 'client.test' }),
  });
  assert.deepEqual(await smtp.request('smtp', 'smtp.session.connect', { facts: factsOf('s1') }), { fcrdns: 'pass', rdns: 'client.test' });
  smtp.notify('smtp', 'smtp.tx.reset', { sessionId: 's1' });
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(seen, ['smtp@smtp.1:s1']);
  close();
});

test('a session\'s end rides with the next message to the lka, in order, or leaves on its own within a few tenths of a second', async () => {
  const seen: string[] = [];
  const { smtp, close } = await workerAndLka({
    'smtp.session.close': (req) => void seen.push(`close ${req.sessionId}`),
    'smtp.session.connect': (req) => {
      seen.push(`connect ${req.facts.sessionId}`);
      return { fcrdns: 'pass' };
    },
  });
  smtp.notify('smtp', 'smtp.session.close', { sessionId: 's1' });
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(seen, [], 'the end waits for company');
  await smtp.request('smtp', 'smtp.session.connect', { facts: factsOf('s2') });
  assert.deepEqual(seen, ['close s1', 'connect s2'], 'and goes first when some comes');
  smtp.notify('smtp', 'smtp.session.close', { sessionId: 's2' });
  await new Promise((r) => setTimeout(r, 400));
  assert.deepEqual(seen, ['close s1', 'connect s2', 'close s2'], 'alone, it leaves all the same');
  close();
});

test('a request waits for its peer to be linked, times out when none comes, and fails when the peer goes', async () => {
  const smtp = new Bus({ process: 'smtp.1', timeouts: { 'smtp.session.connect': 300 } });
  smtp.register(role('smtp', {}));
  const facts = factsOf('s1');
  await assert.rejects(smtp.request('smtp', 'smtp.session.connect', { facts }), /role lka is not running/);

  const [a, b] = await socketPair();
  const lka = new Bus({ process: 'lka' });
  let answer: (() => void) | null = null;
  lka.register(role('lka', { 'smtp.session.connect': () => new Promise((r) => (answer = () => r({ fcrdns: 'fail' }))) }));
  const waiting = smtp.request('smtp', 'smtp.session.connect', { facts });
  smtp.attach(new SocketLink('lka', a), ['lka']);
  lka.attach(new SocketLink('smtp.1', b), ['smtp']);
  await new Promise((r) => setTimeout(r, 50));
  answer!();
  assert.deepEqual(await waiting, { fcrdns: 'fail' });

  // an answer that never comes: the request gives up at its timeout
  await assert.rejects(smtp.request('smtp', 'smtp.session.connect', { facts }), /no answer within/);

  const downs: string[] = [];
  smtp.onPeerDown((p) => downs.push(p));
  const pending = smtp.request('smtp', 'smtp.session.connect', { facts });
  b.destroy();
  await assert.rejects(pending, /process lka went away/);
  assert.deepEqual(downs, ['lka']);
});

test('a peer that sends what its roles may not is cut off, and nothing of it is handled', async () => {
  const [a, b] = await socketPair();
  const queue = new Bus({ process: 'queue' });
  let listed = 0;
  queue.register(role('queue', { 'control.queue.list': () => { listed++; return { envelopes: [], truncated: false }; } }));
  queue.register(role('scheduler', {}));
  const downs: string[] = [];
  queue.onPeerDown((p) => downs.push(p));
  queue.attach(new SocketLink('smtp.1', b), ['smtp']);
  // a compromised worker forges a control request: smtp may not message it, control does not live there
  const forged = new SocketLink('queue', a);
  forged.send({ k: 'q', id: 1, type: 'control.queue.list', from: 'control', p: { limit: 10 } });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(listed, 0);
  assert.deepEqual(downs, ['smtp.1']);
  assert.equal(forged.closed, true);
});

test('counters for another process\'s stat role leave summed, a few times a second, not once per event', async () => {
  const [a, b] = await socketPair();
  const smtp = new Bus({ process: 'smtp.1' });
  const control = new Bus({ process: 'control' });
  smtp.register(role('smtp', {}));
  const seen: string[] = [];
  control.register(role('stat', {
    'stat.increment': (req) => void seen.push(`+${req.key}${req.labels ? JSON.stringify(req.labels) : ''}=${req.by ?? 1}`),
    'stat.decrement': (req) => void seen.push(`-${req.key}=${req.by ?? 1}`),
    'stat.set': (req) => void seen.push(`${req.key}:=${req.value}`),
  }));
  smtp.attach(new SocketLink('control', a), ['control', 'stat']);
  control.attach(new SocketLink('smtp.1', b), ['smtp']);
  for (let i = 0; i < 100; i++) {
    smtp.notify('smtp', 'stat.increment', { key: 'smtp.session' });
    smtp.notify('smtp', 'stat.increment', { key: 'smtp.message', labels: { listener: String(i % 2) } });
    smtp.notify('smtp', 'stat.decrement', { key: 'smtp.session' });
    smtp.notify('smtp', 'stat.set', { key: 'scheduler.envelope', value: i });
  }
  smtp.notify('smtp', 'stat.increment', { key: 'smtp.session', by: 5 });
  await new Promise((r) => setTimeout(r, FLUSH_MS * 5));
  assert.deepEqual(seen.sort(), ['+smtp.message{"listener":"0"}=50', '+smtp.message{"listener":"1"}=50', '+smtp.session=105', '-smtp.session=100', 'scheduler.envelope:=99']);
  a.destroy();
});
