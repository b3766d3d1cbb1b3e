/**
 * MAIL FROM reaches the lka only when a `senders` table must vouch for an authenticated sender,
 * as smtp_tx_mail_from() sends IMSG_SMTP_CHECK_SENDER only then (issue 18: one trip less per
 * message). Otherwise the first RCPT begins the transaction; each accepted recipient's envelopes
 * go straight to the queue's message, as lka_submit() sends them.
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
import { LkaSessions } from '../../src/lka/sessions.js';

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
  const staged: { worker: string; msgid: string; envelopes: { sender: string; rcpt: string }[] }[] = [];
  for (const name of ['smtp', 'parent', 'mta', 'control', 'scheduler'] as const) bus.register(stub(name));
  bus.register(stub('queue', { 'lka.envelopes.stage': (req) => void staged.push(req) }));
  bus.register(stub('stat', { 'stat.increment': () => undefined }));
  await lka.start();
  // an unauthenticated session on either listener: smtp_tx_mail_from() asks nothing
  for (const listener of [0, 1]) {
    const facts: SessionFacts = { sessionId: `s${listener}`, listener, clientAddress: '127.0.0.1', clientPort: 1, localAddress: '127.0.0.1', localPort: 2525, tls: false, socket: false };
    const msgid = `0a00000${listener}`;
    const res = await bus.request('smtp', 'smtp.rcpt.resolve', { facts, msgid, sender: 'bob@example.org', rcpt: 'carol@example.net', dsn: {}, smtputf8: false });
    assert.equal(res.result, 'accept', JSON.stringify(res));
    await new Promise((r) => setImmediate(r));
    const sent = staged.splice(0);
    assert.deepEqual(sent.map((s) => [s.worker, s.msgid, s.envelopes.map((e) => [e.sender, e.rcpt])]), [['daemon', msgid, [['bob@example.org', 'carol@example.net']]]]);
  }
  await lka.stop();
});

test('a transaction a senders table vouched for is bound to the message of its first RCPT', () => {
  const sessions = new LkaSessions();
  sessions.begin('smtp.1', 's', 'alice@example.test');
  assert.equal(sessions.sender('smtp.1', 's', '0a000001'), 'alice@example.test');
  assert.equal(sessions.sender('smtp.1', 's', '0a000001'), 'alice@example.test');
  assert.equal(sessions.sender('smtp.1', 's', '0a000002'), undefined, 'another message needs its own MAIL FROM check');
  assert.equal(sessions.sender('smtp.2', 's', '0a000001'), undefined, 'another worker\'s session');
});
