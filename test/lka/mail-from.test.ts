/**
 * MAIL FROM reaches the lka only when a `senders` table must vouch for an authenticated sender,
 * as smtp_tx_mail_from() sends IMSG_SMTP_CHECK_SENDER only then (issue 18: one trip less per
 * message). Otherwise the first RCPT begins the transaction, and the queue's claim gets the
 * envelopes with that sender.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bus, type Role } from '../../src/bus/bus.js';
import { PEERS, type Handlers, type RoleName, type SessionFacts } from '../../src/bus/messages.js';
import { systemClock } from '../../src/clock.js';
import { parseConfig } from '../../src/config/load.js';
import { createLkaRole } from '../../src/lka/role.js';

function stub<R extends RoleName>(name: R, handlers: Partial<Handlers<R>> = {}): Role<R> {
  return { name, peers: PEERS[name], handlers: handlers as Handlers<R>, start: async () => {}, stop: async () => {} };
}

test('without a senders check the first RCPT begins the transaction; the claim carries its sender', async () => {
  const config = parseConfig([
    'table sendermap { alice = alice@example.test }',
    'listen on 127.0.0.1 port 2525',
    'listen on 127.0.0.1 port 2526 senders <sendermap>',
    'action "out" relay host smtp://127.0.0.1:2527',
    'match from any for any action "out"',
  ].join('\n'), { file: 'mail-from.conf' });
  const bus = new Bus({ checkSerializable: true });
  const spool = await mkdtemp(join(tmpdir(), 'tsmtpd-lka-'));
  const lka = createLkaRole({
    config, bus: bus.endpoint('lka'), clock: systemClock, spool,
    backends: { queue: 'fs', scheduler: 'ramqueue', stat: 'ram' }, serverName: 'mx.test', verbose: false,
  });
  bus.register(lka);
  for (const name of ['smtp', 'queue', 'parent', 'mta', 'control', 'scheduler'] as const) bus.register(stub(name));
  bus.register(stub('stat', { 'stat.increment': () => undefined }));
  await lka.start();
  // an unauthenticated session on either listener: smtp_tx_mail_from() asks nothing
  for (const listener of [0, 1]) {
    const facts: SessionFacts = { sessionId: `s${listener}`, listener, clientAddress: '127.0.0.1', clientPort: 1, localAddress: '127.0.0.1', localPort: 2525, tls: false, socket: false };
    const res = await bus.request('smtp', 'smtp.rcpt.resolve', { facts, sender: 'bob@example.org', rcpt: 'carol@example.net', dsn: {}, smtputf8: false });
    assert.equal(res.result, 'accept', JSON.stringify(res));
    const { envelopes } = await bus.request('queue', 'queue.envelopes.claim', { worker: 'daemon', sessionId: facts.sessionId });
    assert.deepEqual(envelopes.map((e) => [e.sender, e.rcpt]), [['bob@example.org', 'carol@example.net']]);
  }
  await lka.stop();
});
