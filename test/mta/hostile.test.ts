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
    cfg: { mta: { maxDeferred: 100, port, limits: [] } },
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
