/** The mta role against sinks on 127.0.0.2-9: batching, session reuse, MX order and fallback, null MX, backoff, results. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { MtaLimit } from '../../src/config/types.js';
import { configureLog } from '../../src/log.js';
import { freePort } from '../harness/net.js';
import { MapResolver, mtaEnvelope, relayAction, startMta } from './helpers.js';
import { Sink } from './sink.js';

const logs: string[] = [];
configureLog({ sink: { write: (l) => logs.push(l) }, level: 'debug', timestamps: false });

function mtaCfg(port: number, limits: Record<string, number> = {}) {
  const l: MtaLimit[] = Object.keys(limits).length ? [{ limits, where: { file: 't', line: 1 } }] : [];
  return { mta: { port, limits: l } };
}

test('50 recipients of one message handed over together go in ONE transaction', async (t) => {
  const port = await freePort('127.0.0.2');
  const sink = await Sink.start({ host: '127.0.0.2', port, caps: ['PIPELINING'] });
  const mta = await startMta([relayAction()], { resolver: new MapResolver({ mx: { 'dst.test': [[10, 'mx1.test']] }, a: { 'mx1.test': ['127.0.0.2'] } }), cfg: mtaCfg(port) });
  t.after(async () => { await mta.stop(); await sink.close(); });
  const results = await mta.deliverAll(Array.from({ length: 50 }, (_, i) => mtaEnvelope(i)));
  assert.deepEqual(new Set(results.map((r) => r.result)), new Set(['ok']));
  assert.equal(sink.transactions.length, 1);
  assert.equal(sink.transactions[0]!.rcpts.length, 50);
  assert.equal(sink.connections, 1);
  assert.equal(mta.counted.filter((c) => c.startsWith('mta.delivery')).length, 50);
  const line = logs.find((l) => l.includes(' mta delivery ') && l.includes('user7@dst.test'));
  // mta_log(): led by the session's id, source and relay as OpenSMTPD quotes them
  assert.match(line ?? '', /^[0-9a-f]{16} mta delivery evpid=0000abcd00000007 from=<alice@example.net> to=<user7@dst.test> rcpt=<-> source="127\.\d+\.\d+\.\d+" relay="127\.0\.0\.2 \(mx1\.test\)" delay=\S+ result="Ok" stat="250 2\.0\.0 queued"$/);
  assert.doesNotMatch(line!, /^0000abcd00000007 /);
});

test('a server taking L recipients per transaction gets a 100-recipient message in exactly ceil(100 / L) transactions, with both cores busy', async (t) => {
  const port = await freePort('127.0.0.2');
  const L = 30;
  const sink = await Sink.start({ host: '127.0.0.2', port, caps: ['PIPELINING'], maxRcpts: L });
  const mta = await startMta([relayAction()], { resolver: new MapResolver({ mx: { 'dst.test': [[10, 'mx1.test']] }, a: { 'mx1.test': ['127.0.0.2'] } }), cfg: mtaCfg(port) });
  // two busy processes: no timer decides the grouping, so load changes nothing
  const burners = [0, 1].map(() => spawn(process.execPath, ['-e', 'const end = Date.now() + 20000; while (Date.now() < end);'], { stdio: 'ignore' }));
  t.after(async () => { burners.forEach((b) => b.kill('SIGKILL')); await mta.stop(); await sink.close(); });
  const results = await mta.deliverAll(Array.from({ length: 100 }, (_, i) => mtaEnvelope(i)));
  assert.deepEqual(results.map((r) => r.result), Array(100).fill('ok'));
  assert.equal(sink.transactions.length, Math.ceil(100 / L));
  assert.deepEqual(sink.transactions.map((tx) => tx.rcpts.length), [30, 30, 30, 10]);
  assert.equal(new Set(sink.transactions.flatMap((tx) => tx.rcpts)).size, 100, 'every recipient exactly once');
});

test('a server that takes no recipient at all is not asked again in a loop', async (t) => {
  const port = await freePort('127.0.0.2');
  const sink = await Sink.start({ host: '127.0.0.2', port, caps: ['PIPELINING'], maxRcpts: 0 });
  const mta = await startMta([relayAction()], { resolver: new MapResolver({ mx: { 'dst.test': [[10, 'mx1.test']] }, a: { 'mx1.test': ['127.0.0.2'] } }), cfg: mtaCfg(port) });
  t.after(async () => { await mta.stop(); await sink.close(); });
  const results = await mta.deliverAll(Array.from({ length: 5 }, (_, i) => mtaEnvelope(i)));
  assert.deepEqual(results.map((r) => r.result), Array(5).fill('tempfail'));
  assert.equal(sink.commands.flat().filter((c) => c.startsWith('MAIL')).length, 1);
});

test('a relay whose task list is full holds further messages in the scheduler (task-hiwat) and releases them as it drains (limit.c)', async (t) => {
  const port = await freePort('127.0.0.2');
  // a tarpit: it never answers DATA, so the one session allowed stays busy until its timeout
  const sink = await Sink.start({ host: '127.0.0.2', port, silentOn: 'DATA' });
  const limits = { 'max-conn-per-route': 1, 'task-hiwat': 2, 'task-lowat': 1, 'task-release': 1 };
  const mta = await startMta([relayAction()], { resolver: new MapResolver({ mx: { 'dst.test': [[10, 'mx1.test']] }, a: { 'mx1.test': ['127.0.0.2'] } }), cfg: mtaCfg(port, limits), timeouts: { connect: 3000, command: 1000, dataEnd: 1000 } });
  t.after(async () => { await mta.stop(); await sink.close(); });
  const message = (n: number) => [mtaEnvelope(1, { msgid: (0x300 + n).toString(16).padStart(8, '0') })];
  // one in the session, two waiting: the list is at its high water mark
  const busy = [1, 2, 3].map((n) => mta.deliverAll(message(n)));
  await new Promise((r) => setTimeout(r, 300));
  const held = await mta.deliverAll(message(4));
  assert.equal(held[0]!.result, 'hold', 'past task-hiwat the envelope goes back to the scheduler');
  assert.equal(mta.released.length, 0, 'nothing released yet');
  // the tarpit times out each in turn: as the list drains below task-lowat the hold is released
  const done = await Promise.all(busy);
  assert.deepEqual(done.map((r) => r[0]!.result), ['tempfail', 'tempfail', 'tempfail']);
  assert.ok(mta.released.length >= 1, 'the hold queue was released');
  assert.equal(mta.released[0]!.holdq, (held[0] as { holdq: string }).holdq);
});

test('20 messages to one domain reuse far fewer connections (sequential: one; concurrent: at most the limit)', async (t) => {
  const port = await freePort('127.0.0.2');
  const sink = await Sink.start({ host: '127.0.0.2', port });
  const mta = await startMta([relayAction()], { resolver: new MapResolver({ mx: { 'dst.test': [[10, 'mx1.test']] }, a: { 'mx1.test': ['127.0.0.2'] } }), cfg: mtaCfg(port, { 'max-conn-per-route': 3 }) });
  t.after(async () => { await mta.stop(); await sink.close(); });
  for (let i = 0; i < 20; i++) assert.equal((await mta.deliver(mtaEnvelope(i, { msgid: (0x100 + i).toString(16).padStart(8, '0') }))).result, 'ok');
  assert.equal(sink.transactions.length, 20);
  assert.equal(sink.connections, 1);
  // a completed transaction needs no RSET before the next MAIL (mta_session.c: MTA_EOM -> MTA_READY)
  assert.equal(sink.commands[0]!.filter((c) => c === 'RSET').length, 0);
  assert.equal(sink.commands[0]!.filter((c) => c.startsWith('MAIL FROM')).length, 20);
  const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => mta.deliver(mtaEnvelope(i, { msgid: (0x200 + i).toString(16).padStart(8, '0') }))));
  assert.ok(rs.every((r) => r.result === 'ok'));
  assert.equal(sink.transactions.length, 40);
  assert.ok(sink.connections <= 3, `connections: ${sink.connections}`);
});

test('MX preference order with fallback through every MX; a dead route is backed off and skipped next time', async (t) => {
  const port = await freePort('127.0.0.3');
  const second = await Sink.start({ host: '127.0.0.4', port });
  const resolver = new MapResolver({ mx: { 'dst.test': [[20, 'mx2.test'], [10, 'mx1.test'], [30, 'mx3.test']] }, a: { 'mx1.test': ['127.0.0.3'], 'mx2.test': ['127.0.0.4'], 'mx3.test': ['127.0.0.5'] } });
  const mta = await startMta([relayAction()], { resolver, cfg: mtaCfg(port, { 'session-mail-max': 1 }) });
  let first: Sink | null = null;
  t.after(async () => { await mta.stop(); await second.close(); await first?.close(); });
  assert.equal((await mta.deliver(mtaEnvelope(1, { msgid: '00000001' }))).result, 'ok');
  assert.equal(second.transactions.length, 1);
  assert.ok(logs.some((l) => / mta mta-error address=127\.0\.0\.3:\d+ .*backoff=15/.test(l)));
  // the first MX comes back, but its route is still resting: the delivery goes to the second again
  first = await Sink.start({ host: '127.0.0.3', port });
  assert.equal((await mta.deliver(mtaEnvelope(2, { msgid: '00000002' }))).result, 'ok');
  assert.equal(first.connections, 0);
  assert.equal(second.transactions.length, 2);
});

test('every MX dead: tempfail, then immediate tempfail without connecting while the routes rest', async (t) => {
  const port = await freePort('127.0.0.6');
  const resolver = new MapResolver({ mx: { 'dst.test': [[10, 'mx1.test'], [20, 'mx2.test']] }, a: { 'mx1.test': ['127.0.0.6'], 'mx2.test': ['127.0.0.7'] } });
  const mta = await startMta([relayAction()], { resolver, cfg: mtaCfg(port) });
  t.after(() => mta.stop());
  const r1 = await mta.deliver(mtaEnvelope(1));
  assert.equal(r1.result, 'tempfail');
  assert.match(r1.detail, /ECONNREFUSED/);
  const before = logs.filter((l) => l.includes('mta-connect')).length;
  const r2 = await mta.deliver(mtaEnvelope(2, { msgid: '00000002' }));
  assert.deepEqual(r2, { result: 'tempfail', enhanced: '4.4.1', detail: 'all routes are backed off' });
  assert.equal(logs.filter((l) => l.includes('mta-connect')).length, before);
});

test('null MX is a permanent failure 5.1.10; NXDOMAIN 5.1.2; no MX falls back to the A record', async (t) => {
  const port = await freePort('127.0.0.8');
  const sink = await Sink.start({ host: '127.0.0.8', port });
  const resolver = new MapResolver({ mx: { 'null.test': [[0, '']], 'gone.test': 'nxdomain' }, a: { 'plain.test': ['127.0.0.8'] } });
  const mta = await startMta([relayAction()], { resolver, cfg: mtaCfg(port) });
  t.after(async () => { await mta.stop(); await sink.close(); });
  const n = await mta.deliver(mtaEnvelope(1, { rcpt: 'x@null.test' }));
  assert.deepEqual(n, { result: 'permfail', enhanced: '5.1.10', detail: 'Domain does not accept mail (null MX)' });
  assert.equal((await mta.deliver(mtaEnvelope(2, { rcpt: 'x@gone.test', msgid: '00000002' }))).result, 'permfail');
  assert.equal((await mta.deliver(mtaEnvelope(3, { rcpt: 'x@plain.test', msgid: '00000003' }))).result, 'ok');
  assert.equal(sink.transactions.length, 1);
});

test('per-recipient 4xx and 5xx in one transaction reach their own envelopes', async (t) => {
  const port = await freePort('127.0.0.9');
  const rcpt = (a: string) => (a === 'user1@dst.test' ? '550 5.1.1 unknown user' : a === 'user2@dst.test' ? '452 4.2.2 mailbox full' : undefined);
  const sink = await Sink.start({ host: '127.0.0.9', port, caps: ['PIPELINING'], rcpt });
  const mta = await startMta([relayAction()], { resolver: new MapResolver({ a: { 'dst.test': ['127.0.0.9'] } }), cfg: mtaCfg(port) });
  t.after(async () => { await mta.stop(); await sink.close(); });
  const [r0, r1, r2] = await mta.deliverAll([0, 1, 2].map((i) => mtaEnvelope(i)));
  assert.equal(r0!.result, 'ok');
  assert.deepEqual(r1, { result: 'permfail', enhanced: '5.1.1', detail: '550 5.1.1 unknown user', remoteMta: 'dst.test' });
  assert.deepEqual(r2, { result: 'tempfail', enhanced: '4.2.2', detail: '452 4.2.2 mailbox full', remoteMta: 'dst.test' });
  assert.equal(sink.transactions.length, 1);
  assert.ok(logs.some((l) => l.includes('to=<user1@dst.test>') && l.includes('result="PermFail"')));
});

test('a backup MX relays only to MXs preferred over itself', async (t) => {
  const port = await freePort('127.0.0.2');
  const primary = await Sink.start({ host: '127.0.0.2', port });
  const worse = await Sink.start({ host: '127.0.0.3', port });
  const resolver = new MapResolver({
    mx: { 'dst.test': [[30, 'worse.test'], [20, 'mta.test'], [10, 'primary.test']], 'only.test': [[10, 'mta.test'], [20, 'worse.test']] },
    a: { 'primary.test': ['127.0.0.2'], 'worse.test': ['127.0.0.3'] },
  });
  const mta = await startMta([relayAction({ backup: true })], { resolver, cfg: mtaCfg(port) });
  t.after(async () => { await mta.stop(); await primary.close(); await worse.close(); });
  assert.equal((await mta.deliver(mtaEnvelope(1))).result, 'ok');
  assert.equal(primary.transactions.length, 1);
  const r = await mta.deliver(mtaEnvelope(2, { rcpt: 'x@only.test', msgid: '00000002' }));
  assert.deepEqual(r, { result: 'tempfail', enhanced: '4.4.4', detail: 'No MX better than this backup MX' });
  assert.equal(worse.connections, 0);
  assert.ok(mta.counted.includes('mta.session'));
});
