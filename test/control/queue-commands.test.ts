/**
 * tsmtpctl's commands on queued mail, driven against a running daemon: with local delivery
 * paused a message stays queued and shows in `show queue`, `show envelope` and `show message`;
 * envelopes are paused, resumed, scheduled and removed; `show status` reports what is paused;
 * `update table` reloads aliases and keeps the old ones when the new file is broken; mail
 * submitted with sendmail through the enqueue socket is delivered.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { TSMTPD_BIN } from '../harness/daemon.js';
import { eventually, sendMessage, startMailHost, type MailHost } from '../harness/mail.js';

const CTL = resolve(dirname(TSMTPD_BIN), 'tsmtpctl.js');
const SENDMAIL = resolve(dirname(TSMTPD_BIN), 'sendmail.js');
let host: MailHost;

function ctl(...args: string[]) {
  const r = spawnSync(process.execPath, [CTL, '--spool', host.daemon.spool, ...args], { encoding: 'utf8', timeout: 10_000 });
  return r;
}

function ok(...args: string[]): string {
  const r = ctl(...args);
  assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function queued(subject: string): Promise<string> {
  const r = await sendMessage(host.port, 'sender@client.test', ['alice@example.test'], `Subject: ${subject}\r\n\r\nbody of ${subject}`);
  assert.equal(r.at(-1)!.code, 250);
  return /^250 2\.0\.0 ([0-9a-f]{8}) /.exec(r.at(-1)!.lines[0]!)![1]!;
}

before(async () => {
  host = await startMailHost();
});
after(async () => {
  await host.stop();
});

test('pause mda keeps mail queued; show queue, envelope and message display it', async () => {
  assert.match(ok('pause', 'mda'), /command succeeded/);
  assert.match(ok('show', 'status'), /^MDA paused\nMTA running\nSMTP running\n(process .*\n)+$/);
  const msgid = await queued('held-1');
  const line = await eventually(async () => ok('show', 'queue').split('\n').find((l) => l.startsWith(msgid)), 'queued envelope');
  const f = line.split('|');
  assert.equal(f.length, 14);
  assert.equal(f[1], 'inet4');
  assert.equal(f[2], 'mda');
  assert.equal(f[4], 'sender@client.test');
  assert.equal(f[5], 'alice@example.test');
  assert.equal(f[11], 'pending');
  assert.match(ok('show', 'envelope', f[0]!), /^version: 3\ndispatcher: local\n(.+\n)*type: mda\n/);
  const { envelope } = JSON.parse(ok('--json', 'show', 'envelope', f[0]!)) as { envelope: { rcpt: string; action: string } };
  assert.equal(envelope.action, 'local');
  assert.match(ok('show', 'message', msgid), /body of held-1/);
  const json = JSON.parse(ok('--json', 'show', 'queue', msgid)) as { envelopes: { id: string }[] };
  assert.deepEqual(json.envelopes.map((e) => e.id), [f[0]]);
  assert.equal((await host.maildir('alice')).filter((m) => m.includes('held-1')).length, 0);
});

test('pause envelope marks it suspended; resume mda delivers the rest; resume envelope and schedule deliver it', async () => {
  const msgid = await queued('held-2');
  assert.match(ok('pause', 'envelope', msgid), /1 envelope paused/);
  assert.match(ok('show', 'queue', msgid), /\|suspend\|/);
  ok('resume', 'mda');
  await eventually(async () => (await host.maildir('alice')).some((m) => m.includes('held-1')), 'held-1 delivered');
  assert.ok(ok('show', 'queue').includes(msgid), 'the suspended envelope stays');
  ok('resume', 'envelope', msgid);
  ok('schedule', msgid);
  await eventually(async () => (await host.maildir('alice')).some((m) => m.includes('held-2')), 'held-2 delivered');
  await eventually(async () => ok('show', 'queue') === '' || undefined, 'an empty queue');
});

test('remove deletes queued mail', async () => {
  ok('pause', 'mda');
  const msgid = await queued('doomed');
  await eventually(async () => ok('show', 'queue').includes(msgid) || undefined, 'queued');
  assert.match(ok('remove', msgid), /1 envelope removed/);
  await eventually(async () => !ok('show', 'queue').includes(msgid) || undefined, 'removed');
  ok('resume', 'mda');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await host.maildir('alice')).filter((m) => m.includes('doomed')).length, 0);
  assert.match(await host.daemon.waitForLog(/remove evpid=\S+ reason="Removed by administrator"/), /Removed by administrator/);
});

test('update table reloads aliases, and a broken file keeps the old contents', async () => {
  const aliases = join(host.dir, 'aliases');
  await writeFile(aliases, 'postmaster: alice\nsales: bob\n');
  assert.match(ok('update', 'table', 'aliases'), /command succeeded/);
  assert.equal((await sendMessage(host.port, 's@client.test', ['sales@example.test'], 'Subject: to-sales\r\n\r\nx')).at(-1)!.code, 250);
  await eventually(async () => (await host.maildir('bob')).some((m) => m.includes('to-sales')), 'new alias');
  await writeFile(aliases, 'postmaster: alice\nbroken-entry-without-value\n');
  const r = ctl('update', 'table', 'aliases');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /update table aliases failed: .*aliases:2: /);
  assert.equal((await sendMessage(host.port, 's@client.test', ['sales@example.test'], 'Subject: still-sales\r\n\r\nx')).at(-1)!.code, 250);
  await eventually(async () => (await host.maildir('bob')).some((m) => m.includes('still-sales')), 'old alias kept');
});

test('sendmail -t submits through the enqueue socket', async () => {
  const r = spawnSync(process.execPath, [SENDMAIL, '--spool', host.daemon.spool, '-t', '-f', 'carol@example.test'], {
    input: 'To: Bob <bob@example.test>\nBcc: alice@example.test\nSubject: via-sendmail\n\n.leading dot\nbody\n',
    encoding: 'utf8',
    timeout: 10_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const [bob] = await eventually(async () => { const m = (await host.maildir('bob')).filter((x) => x.includes('via-sendmail')); return m.length ? m : undefined; }, 'bob');
  await eventually(async () => (await host.maildir('alice')).some((m) => m.includes('via-sendmail')), 'alice (Bcc)');
  assert.doesNotMatch(bob!, /^Bcc:/m);
  assert.match(bob!, /^\.leading dot\r?$/m);
  assert.match(bob!, /^Message-ID: </m);
});
