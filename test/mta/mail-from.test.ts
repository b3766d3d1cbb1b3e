/**
 * Issue 15 item 5: a relay action's `mail-from` as mta.c applies it (mta_handle_envelope builds
 * task->sender with text_to_mailaddr): `@domain` replaces only the domain, `user` only the local
 * part, and the null sender `<>` is never rewritten.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configureLog } from '../../src/log.js';
import { rewriteSender } from '../../src/mta/mail-from.js';
import { freePort } from '../harness/net.js';
import { MapResolver, mtaEnvelope, relayAction, startMta } from './helpers.js';
import { Sink } from './sink.js';

const logs: string[] = [];
configureLog({ sink: { write: (l) => logs.push(l) }, level: 'info', timestamps: false });

test('rewriteSender: each part the option names replaces that part; <> stays <>', () => {
  assert.equal(rewriteSender('alice@example.net', '@relay.test'), 'alice@relay.test');
  assert.equal(rewriteSender('alice@example.net', 'bounces'), 'bounces@example.net');
  assert.equal(rewriteSender('alice@example.net', 'bounces@relay.test'), 'bounces@relay.test');
  assert.equal(rewriteSender('', '@relay.test'), '');
  assert.equal(rewriteSender('', 'bounces@relay.test'), '', 'a bounce is never given a sender');
  assert.equal(rewriteSender('alice@example.net', undefined), 'alice@example.net');
});

test('relay mail-from "@relay.test" on the wire: MAIL FROM:<alice@relay.test>, and <> for a bounce', async (t) => {
  const port = await freePort('127.0.0.5');
  const sink = await Sink.start({ host: '127.0.0.5', port });
  const mta = await startMta([relayAction({ mailFrom: '@relay.test' })], {
    resolver: new MapResolver({ a: { 'dst.test': ['127.0.0.5'] } }),
    cfg: { mta: { port, limits: [] } },
  });
  t.after(async () => { await mta.stop(); await sink.close(); });
  assert.equal((await mta.deliver(mtaEnvelope(1, { msgid: '00000011', sender: 'alice@example.net' }))).result, 'ok');
  assert.equal((await mta.deliver(mtaEnvelope(2, { msgid: '00000012', sender: '' }))).result, 'ok');
  assert.deepEqual(sink.transactions.map((x) => x.mail), ['MAIL FROM:<alice@relay.test>', 'MAIL FROM:<>']);
  // mta_log prints the task's sender, the one the next hop was given
  assert.ok(logs.some((l) => / mta delivery evpid=0000001100000001 from=<alice@relay\.test> /.test(l)), logs.join('\n'));
});
