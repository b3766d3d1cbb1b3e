/**
 * A real client at load: Postfix's smtp-source opens 20 parallel sessions and sends 400
 * messages; every one is accepted and relayed to the sink.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { eventually, startMailHost } from '../harness/mail.js';
import { Sink } from '../mta/sink.js';
import { peerSkip } from '../harness/peers.js';

const SMTP_SOURCE = ['/usr/sbin/smtp-source', '/usr/bin/smtp-source'].find((p) => spawnSync('test', ['-x', p]).status === 0);

test('smtp-source, 20 sessions: every message accepted and relayed', { skip: peerSkip('smtp-source'), timeout: 120_000 }, async () => {
  const sink = await Sink.start({ host: '127.0.0.4', caps: ['PIPELINING'] });
  const host = await startMailHost({
    extra: `action "out" relay host smtp://127.0.0.4:${sink.port}`,
    rules: 'match from src 127.0.0.1 for domain "relay.test" action "out"',
  });
  try {
    const r = spawnSync(SMTP_SOURCE!, ['-s', '20', '-m', '400', '-l', '4096', '-f', 'load@client.test', '-t', 'rcpt@relay.test', `127.0.0.1:${host.port}`], {
      encoding: 'utf8', timeout: 100_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.trim(), '', 'smtp-source saw no error reply');
    await eventually(async () => sink.transactions.length >= 400 || undefined, '400 messages at the sink', 60_000);
    assert.equal(sink.transactions.length, 400);
    assert.equal((host.daemon.logs().match(/ smtp message msgid=/g) ?? []).length, 400);
  } finally {
    await host.stop();
    await sink.close();
  }
});
