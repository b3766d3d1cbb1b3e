/**
 * Issue 15 item 3: sendmail as cron, mail(1) and s-nail call it, as a user other than root,
 * matched to OpenSMTPD 7.8:
 * - without -f the sender is the message's From: or the invoking user, qualified with the
 *   server's name (enqueue.c enqueue → build_from, parse_message with get_from, qualify_addr);
 *   bare recipients too (rcpt_add → qualify_addr), from the arguments and from -t's headers;
 * - with the daemon down the message is kept in SPOOL/offline as a file its user owns, the
 *   arguments on the first line joined with `|` (smtpctl.c offline_file, enqueue.c
 *   enqueue_offline); the daemon, when it starts, runs sendmail again as that user with them
 *   (smtpd.c offline_scan, offline_enqueue) and removes the file.
 * The test runs sendmail as `nobody`, so it needs root (as every daemon test here does).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { findServerName } from '../../src/daemon/server-name.js';
import { TSMTPD_BIN } from '../harness/daemon.js';
import { eventually, startMailHost, type MailHost } from '../harness/mail.js';

const SENDMAIL = resolve(dirname(TSMTPD_BIN), 'sendmail.js');
/** The name the daemon and sendmail both find (/etc/mail/mailname, else the host name). */
const SERVER = findServerName();
const NOBODY = 65534;
const IS_ROOT = process.getuid?.() === 0;
let host: MailHost;

function sendmail(args: string[], input: string) {
  return spawnSync(process.execPath, [SENDMAIL, ...args], {
    input, encoding: 'utf8', timeout: 15_000, cwd: '/',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TSMTPD_SPOOL: host.daemon.spool },
    ...(IS_ROOT ? { uid: NOBODY, gid: NOBODY } : {}),
  });
}

async function delivered(user: string, subject: string): Promise<string> {
  return eventually(async () => (await host.maildir(user)).find((m) => m.includes(`Subject: ${subject}`)), `${subject} for ${user}`);
}

before(async () => {
  host = await startMailHost();
});
after(async () => {
  await host.stop();
});

test('as cron calls it: `sendmail bob` as nobody sends from nobody@server to bob@server', { skip: !IS_ROOT && 'needs root to run sendmail as nobody' }, async () => {
  const r = sendmail(['bob'], 'Subject: cron-job\n\noutput of the job\n');
  assert.equal(r.status, 0, r.stderr);
  const m = await delivered('bob', 'cron-job');
  assert.match(m, new RegExp(`^Return-Path: <nobody@${SERVER.replace(/\./g, '\\.')}>\r?$`, 'm'));
  assert.match(m, new RegExp(`^From: <nobody@${SERVER.replace(/\./g, '\\.')}>\r?$`, 'm'));
});

test('without -f the From: header gives the sender; -t takes bare To: names as local users', { skip: !IS_ROOT && 'needs root' }, async () => {
  const r = sendmail(['-t'], 'From: root (Cron Daemon)\nTo: alice, bob\nSubject: from-header\n\nbody\n');
  assert.equal(r.status, 0, r.stderr);
  for (const user of ['alice', 'bob']) {
    const m = await delivered(user, 'from-header');
    assert.match(m, new RegExp(`^Return-Path: <root@${SERVER.replace(/\./g, '\\.')}>\r?$`, 'm'));
  }
});

test('with the daemon down, the message waits in SPOOL/offline and goes when the daemon starts', { skip: !IS_ROOT && 'needs root' }, async () => {
  await host.daemon.stop();
  const offline = join(host.daemon.spool, 'offline');
  assert.equal((await stat(offline)).mode & 0o7777, 0o1777, 'world-writable and sticky');

  const r = sendmail(['-t', '-oi'], 'To: bob\nBcc: alice\nSubject: kept-offline\n\n.\nlast line\n');
  assert.equal(r.status, 0, r.stderr);
  const names = await readdir(offline);
  assert.equal(names.length, 1);
  assert.match(names[0]!, /^\d+\.[A-Za-z0-9]{10}$/);
  const st = await stat(join(offline, names[0]!));
  assert.equal(st.uid, NOBODY, 'owned by the user who sent it');
  assert.equal(st.mode & 0o777, 0o600);
  assert.equal(await readFile(join(offline, names[0]!), 'utf8'), '-t|-oi\nTo: bob\nBcc: alice\nSubject: kept-offline\n\n.\nlast line\n');
  // `|` separates the arguments in the file: an argument holding one is refused (EX_SOFTWARE)
  const bad = sendmail(['a|b@x.example'], 'Subject: no\n\nx\n');
  assert.equal(bad.status, 70, bad.stderr);
  assert.equal((await readdir(offline)).length, 1);

  host.daemon = await host.daemon.restart();
  const bob = await delivered('bob', 'kept-offline');
  await delivered('alice', 'kept-offline');
  assert.doesNotMatch(bob, /^Bcc:/m);
  assert.match(bob, new RegExp(`^Return-Path: <nobody@${SERVER.replace(/\./g, '\\.')}>\r?$`, 'm'));
  assert.match(bob, /^\.\r?\nlast line\r?$/m, 'with -oi a lone dot is a line of the message');
  await eventually(async () => (await readdir(offline)).length === 0 || undefined, 'the offline file removed');
  assert.match(host.daemon.logs(), /daemon offline .*user=nobody result=enqueued/);
});
