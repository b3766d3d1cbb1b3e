/**
 * Issue 15 item 2: sendmail with a UTF-8 recipient (RFC 6531). The daemon refuses a non-ASCII
 * address without SMTPUTF8 (553 5.6.7), so sendmail asks for SMTPUTF8 when an address of the
 * envelope is UTF-8, and the message reaches the alias once encoded. OpenSMTPD 7.8's enqueue.c
 * has no SMTPUTF8 (nor does its smtpd): this follows RFC 6531 as the daemon does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { TSMTPD_BIN } from '../harness/daemon.js';
import { eventually, startMailHost } from '../harness/mail.js';

const SENDMAIL = resolve(dirname(TSMTPD_BIN), 'sendmail.js');

test('`sendmail jörg@example.test` submits with SMTPUTF8 and the alias gets the message', async (t) => {
  const host = await startMailHost({ aliases: 'postmaster: alice\njörg: alice\n' });
  t.after(() => host.stop());
  const r = spawnSync(process.execPath, [SENDMAIL, 'jörg@example.test'], {
    input: 'Subject: grüße\n\nhallo\n', encoding: 'utf8', timeout: 15_000, cwd: '/',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TSMTPD_SPOOL: host.daemon.spool },
  });
  assert.equal(r.status, 0, r.stderr);
  const [m] = await eventually(async () => { const box = await host.maildir('alice'); return box.length ? box : undefined; }, 'the delivery');
  assert.match(m!, /^Delivered-To: jörg@example\.test$/m);
  assert.match(m!, /^Subject: grüße$/m);
});
