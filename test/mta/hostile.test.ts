/** Misbehaving remote hosts through the mta role: stalls, drops, forged replies and dead reused sessions never hang or crash it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configureLog } from '../../src/log.js';
import { freePort } from '../harness/net.js';
import { MapResolver, mtaEnvelope, relayAction, startMta } from './helpers.js';
import { Sink, type SinkOptions } from './sink.js';

configureLog({ sink: { write: () => {} }, level: 'error', timestamps: false });

async function setup(t: { after(fn: () => Promise<void>): void }, o: Partial<SinkOptions>) {
  const port = await freePort('127.0.0.6');
  const sink = await Sink.start({ host: '127.0.0.6', port, ...o });
  const mta = await startMta([relayAction()], {
    resolver: new MapResolver({ a: { 'dst.test': ['127.0.0.6'] } }),
    timeouts: { connect: 2000, command: 300, dataEnd: 300 },
    cfg: { mta: { port, limits: [] } },
  });
  t.after(async () => { await mta.stop(); await sink.close(); });
  return { sink, mta };
}

test('a server that stops answering after RCPT: tempfail by the step timeout', async (t) => {
  const { mta } = await setup(t, { silentOn: 'DATA' });
  const r = await mta.deliver(mtaEnvelope(1));
  assert.equal(r.result, 'tempfail');
  assert.match(r.detail, /timeout/);
});

test('a server that drops the connection at DATA: tempfail, and the next message still goes out on a new session', async (t) => {
  const { sink, mta } = await setup(t, { dropOn: 'DATA' });
  const r = await mta.deliver(mtaEnvelope(1));
  assert.equal(r.result, 'tempfail');
  assert.match(r.detail, /closed/);
  sink.opts.dropOn = undefined;
  assert.equal((await mta.deliver(mtaEnvelope(2, { msgid: '00000002' }))).result, 'ok');
});

test('a forged multi-line RCPT reply is a protocol error: tempfail, no DATA sent', async (t) => {
  const { sink, mta } = await setup(t, { rcpt: () => '250-2.1.5 ok\r\nDATA\r\n250 ok' });
  const r = await mta.deliver(mtaEnvelope(1));
  assert.equal(r.result, 'tempfail');
  assert.match(r.detail, /protocol error/);
  assert.ok(!sink.commands.flat().includes('DATA'));
});

test('an idle session the server closed is noticed: the message is retried on a fresh connection', async (t) => {
  const { sink, mta } = await setup(t, { closeAfterTx: true });
  for (let i = 1; i <= 3; i++) assert.equal((await mta.deliver(mtaEnvelope(i, { msgid: i.toString(16).padStart(8, '0') }))).result, 'ok');
  assert.equal(sink.transactions.length, 3);
  assert.equal(sink.connections, 3);
});

/**
 * Issue 13, item 2: a reply RFC 5321 §4.3.2 does not allow at a step is a protocol error, never
 * a success. Before, a 250 to DATA had the message counted as delivered with its body never
 * sent (the envelope removed, no bounce). Each case must come back tempfail: kept for a retry.
 */
const FORBIDDEN: [string, Partial<SinkOptions>][] = [
  ['250 as the greeting', { banner: '250 sink.test hello\r\n' }],
  ['354 to EHLO', { replies: { EHLO: '354 go ahead' } }],
  ['220 to HELO', { noEhlo: true, replies: { HELO: '220 sink.test' } }],
  ['250 to STARTTLS', { caps: ['STARTTLS'], replies: { STARTTLS: '250 2.0.0 sure' } }],
  ['220 to MAIL', { replies: { MAIL: '220 sink.test ready' } }],
  ['251 to MAIL', { replies: { MAIL: '251 2.1.0 ok' } }],
  ['354 to MAIL', { replies: { MAIL: '354 go ahead' } }],
  ['252 to RCPT', { rcpt: () => '252 2.1.5 cannot verify, will try' }],
  ['354 to RCPT', { rcpt: () => '354 go ahead' }],
  ['250 to DATA', { replies: { DATA: '250 2.0.0 ok' } }],
  ['251 to DATA', { replies: { DATA: '251 2.0.0 ok' } }],
  ['334 to DATA', { replies: { DATA: '334 go on' } }],
  ['a code above 5xx to DATA', { replies: { DATA: '600 what' } }],
  ['a 1xx to MAIL', { replies: { MAIL: '150 opening' } }],
];

for (const [what, opts] of FORBIDDEN) {
  test(`issue 13: ${what} is a protocol error: tempfail, the body never sent`, async (t) => {
    const { sink, mta } = await setup(t, opts);
    const r = await mta.deliver(mtaEnvelope(1));
    assert.equal(r.result, 'tempfail', JSON.stringify(r));
    assert.match(r.detail, /not allowed|protocol error/);
    assert.equal(sink.transactions.length, 0);
    assert.ok(!sink.commands.flat().some((c) => c.startsWith('Subject:')), 'no body line was sent');
  });
}

for (const reply of ['251 2.0.0 queued', '221 2.0.0 bye', '354 more please']) {
  test(`issue 13: ${reply.slice(0, 3)} to the final dot is a protocol error: tempfail, kept for a retry`, async (t) => {
    const { mta } = await setup(t, { dataEnd: () => reply });
    const r = await mta.deliver(mtaEnvelope(1));
    assert.equal(r.result, 'tempfail', JSON.stringify(r));
    assert.match(r.detail, /reply not allowed to the final dot/);
  });
}

test('issue 13: a 354 to RSET is a protocol error: the session is dropped, the next message goes out on a fresh one', async (t) => {
  // every recipient of the first message is refused, so its transaction ends with RSET (a
  // completed one does not: mta_session.c goes from MTA_EOM straight to MTA_READY)
  const { sink, mta } = await setup(t, { replies: { RSET: '354 go ahead' }, rcpt: (a) => (a.startsWith('refused') ? '550 5.1.1 no such user' : undefined) });
  assert.notEqual((await mta.deliver(mtaEnvelope(1, { rcpt: 'refused@dst.test', origRcpt: 'refused@dst.test' }))).result, 'ok');
  assert.equal((await mta.deliver(mtaEnvelope(2, { msgid: '00000002' }))).result, 'ok');
  assert.equal(sink.transactions.length, 1);
  assert.equal(sink.connections, 2);
  assert.ok(sink.commands[0]!.includes('RSET'));
});
