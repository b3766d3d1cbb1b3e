/**
 * Issue 15 item 6: the mta's tables are the lka's, so `tsmtpctl update table` reaches them. A
 * relay password corrected in its credentials table works without a restart: OpenSMTPD's mta asks
 * the lka for the secret (IMSG_MTA_LOOKUP_CREDENTIALS) for each new relay, and `smtpctl update
 * table` reloads the lka's copy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { startDaemon, TSMTPD_BIN } from '../harness/daemon.js';
import { eventually, sendMessage } from '../harness/mail.js';
import { freePort } from '../harness/net.js';
import { makeCert, Sink } from './sink.js';

const CTL = resolve(dirname(TSMTPD_BIN), 'tsmtpctl.js');

test('a corrected relay password in the auth table works after tsmtpctl update table, without a restart', async () => {
  const sink = await Sink.start({ host: '127.0.0.6', cert: makeCert(['relay.test']), caps: ['STARTTLS', 'AUTH PLAIN LOGIN'], auth: { user: 'relayuser', password: 'right' } });
  const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-relay-auth-'));
  const secrets = join(dir, 'secrets');
  await writeFile(secrets, 'lbl relayuser:wrong\n');
  const port = await freePort();
  const d = await startDaemon({
    dir,
    config: [
      `listen on 127.0.0.1 port ${port} hostname mx.example.test`,
      `table secrets file:${secrets}`,
      `action "out" relay host "smtp+tls://lbl@127.0.0.6:${sink.port}" auth <secrets> tls no-verify`,
      'match from any for domain "remote.test" action "out"',
    ].join('\n'),
  });
  const ctl = (...args: string[]) => spawnSync(process.execPath, [CTL, '--spool', d.spool, ...args], { encoding: 'utf8', timeout: 10_000 });
  try {
    assert.equal((await sendMessage(port, 's@client.test', ['x@remote.test'], 'Subject: t\r\n\r\nx')).at(-1)!.code, 250);
    await d.waitForLog(/mta delivery .*result="?TempFail/);
    assert.equal(sink.transactions.length, 0);
    await writeFile(secrets, 'lbl relayuser:right\n');
    assert.match(ctl('update', 'table', 'secrets').stdout, /command succeeded/);
    assert.equal(ctl('schedule', 'all').status, 0);
    const tx = await eventually(async () => sink.transactions[0], 'delivery with the corrected password');
    assert.equal(tx.authUser, 'relayuser');
  } finally {
    await d.stop();
    await d.cleanup();
    await sink.close();
  }
});
