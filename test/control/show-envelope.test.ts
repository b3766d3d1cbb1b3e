/**
 * Issue 15 item 9, tsmtpctl on a queued envelope, matched to OpenSMTPD 7.8:
 * - `show envelope` prints the envelope file's `field: value` lines (envelope.c,
 *   envelope_dump_buffer, in its order; empty fields left out by envelope_ascii_dump), and with
 *   `--json` the envelope as tsmtpd keeps it;
 * - the error a peer gave is kept as its reply line, once (mta.c hands the queue the reply;
 *   queue.c envelope_set_errormsg stores it), not prefixed with its own status code again;
 * - `schedule` on a paused envelope leaves it paused (scheduler_ramqueue.c rq_envelope_schedule
 *   keeps RQ_ENVELOPE_SUSPEND; smtpctl do_schedule counts it as scheduled).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { startDaemon, TSMTPD_BIN } from '../harness/daemon.js';
import { eventually, sendMessage } from '../harness/mail.js';
import { freePort } from '../harness/net.js';
import { Sink } from '../mta/sink.js';
import { envelopeText } from '../../src/control/envelope-text.js';
import type { Envelope } from '../../src/queue/envelope.js';
import { errorLine } from '../../src/queue/envelope.js';

const CTL = resolve(dirname(TSMTPD_BIN), 'tsmtpctl.js');

function ctl(spool: string, ...args: string[]): string {
  const r = spawnSync(process.execPath, [CTL, '--spool', spool, ...args], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 0, `tsmtpctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test('a relayed envelope the peer turned away: its error once, smtpctl\'s envelope lines, and schedule keeps a pause', { timeout: 60_000 }, async () => {
  const relayPort = await freePort('127.0.0.2');
  const port = await freePort();
  const sink = await Sink.start({ host: '127.0.0.2', port: relayPort, rcpt: () => '450 4.2.0 mailbox busy' });
  const d = await startDaemon({
    config: [
      `listen on 127.0.0.1 port ${port} hostname mx.example.test`,
      `action "out" relay host smtp://127.0.0.2:${relayPort}`,
      'match from any for domain "remote.test" action "out"',
    ].join('\n'),
  });
  try {
    const replies = await sendMessage(port, 'a@client.test', ['b@remote.test'], 'Subject: busy\r\n\r\nbody\r\n');
    assert.equal(replies.at(-1)!.code, 250);
    const line = await eventually(async () => ctl(d.spool, 'show', 'queue').split('\n').find((l) => l.endsWith('busy')), 'the tempfail recorded');
    const fields = line.split('|');
    assert.equal(fields[13], '450 4.2.0 mailbox busy');
    const evpid = fields[0]!;

    const text = ctl(d.spool, 'show', 'envelope', evpid);
    const keys = text.trimEnd().split('\n').map((l) => l.slice(0, l.indexOf(': ')));
    assert.deepEqual(keys, [
      'version', 'dispatcher', 'type', 'smtpname', 'helo', 'hostname', 'errorline', 'sockaddr', 'sender', 'rcpt', 'dest',
      'ctime', 'last-try', 'last-bounce', 'ttl', 'retry', 'dsn-notify',
    ].filter((k) => k !== 'hostname' || /^hostname: /m.test(text)));
    assert.match(text, /^version: 3$/m);
    assert.match(text, /^dispatcher: out$/m);
    assert.match(text, /^type: mta$/m);
    assert.match(text, /^smtpname: mx\.example\.test$/m);
    assert.match(text, /^errorline: 450 4\.2\.0 mailbox busy$/m);
    assert.match(text, /^sockaddr: 127\.0\.0\.1$/m);
    assert.match(text, /^sender: a@client\.test$/m);
    assert.match(text, /^rcpt: b@remote\.test$/m);
    assert.match(text, /^retry: 1$/m);
    assert.match(text, /^dsn-notify: 0$/m, 'no NOTIFY given');
    const json = JSON.parse(ctl(d.spool, '--json', 'show', 'envelope', evpid)) as { envelope: Envelope; text?: string };
    assert.equal(json.envelope.id, evpid);
    assert.equal(json.text, undefined);

    assert.match(ctl(d.spool, 'pause', 'envelope', evpid), /^1 envelope paused$/m);
    assert.match(ctl(d.spool, 'schedule', evpid.slice(0, 8)), /^1 envelope scheduled$/m);
    const after = ctl(d.spool, 'show', 'queue').split('\n').find((l) => l.startsWith(evpid))!.split('|');
    assert.equal(after[3], 'suspend', 'still paused');
    assert.equal(after[11], 'pending');
  } finally {
    await d.stop();
    await sink.close();
    await d.cleanup();
  }
});

const base: Envelope = {
  id: '0123456789abcdef', msgid: '01234567', kind: 'mda', action: 'local', hostname: 'mx.test', helo: 'client.test',
  clientAddress: '::1', sender: '', rcpt: 'bob@mx.test', origRcpt: 'Bob@mx.test', dsn: {}, smtputf8: false, junk: false,
  createdAt: 1000, ttl: 345600, tries: 0, lastTry: 0, lastWarn: 0,
};

test('envelopeText: ascii_dump_mailaddr, sa_to_text, flags, dsn fields and the mda and bounce tails', () => {
  const mda = envelopeText({
    ...base, tag: 'IN', authUser: 'bob', user: { username: 'bob', uid: 1000, gid: 1000, directory: '/home/bob' },
    subaddress: 'lists', mdaTarget: { kind: 'command', value: '/usr/bin/procmail' },
    dsn: { notify: ['NEVER'], ret: 'HDRS', envid: 'ENV1', orcpt: 'rfc822;Bob@mx.test' }, lastError: 'a\r\nb',
  });
  assert.equal(mda, [
    'version: 3', 'dispatcher: local', 'tag: IN', 'type: mda', 'smtpname: mx.test', 'helo: client.test', 'username: bob',
    'errorline: a b', 'sockaddr: [::1]', 'sender: @', 'rcpt: Bob@mx.test', 'dest: bob@mx.test', 'ctime: 1000', 'last-try: 0',
    'last-bounce: 0', 'ttl: 345600', 'retry: 0', 'flags: authenticated', 'dsn-notify: 8', 'dsn-ret: HDRS', 'dsn-envid: ENV1',
    'dsn-orcpt: rfc822;Bob@mx.test', 'mda-exec: /usr/bin/procmail', 'mda-subaddress: lists', 'mda-user: bob', '',
  ].join('\n'));
  const bounce = envelopeText({ ...base, clientAddress: 'local', bounce: { kind: 'delay', reportedEnvelopeId: '0123456700000001' } });
  assert.match(bounce, /^type: bounce\n/m);
  assert.match(bounce, /^sockaddr: local\n/m);
  assert.match(bounce, /^flags: bounce\n/m);
  assert.match(bounce, /\nbounce-type: delayed\n$/);
  assert.doesNotMatch(bounce, /^mda-/m);
});

test('errorLine: a reply is kept as it came; tsmtpd\'s own words get their enhanced code once', () => {
  assert.equal(errorLine('4.2.0', '450 4.2.0 mailbox busy'), '450 4.2.0 mailbox busy');
  assert.equal(errorLine('4.0.0', '421 try later'), '421 try later');
  assert.equal(errorLine('4.3.2', 'banner: 421 4.3.2 busy'), 'banner: 421 4.3.2 busy');
  assert.equal(errorLine('4.4.1', 'connection refused'), '4.4.1 connection refused');
});
