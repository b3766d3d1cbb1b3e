/**
 * Issue 17, logs that admins' tools read: the daemon writes the smtp session's lines in
 * OpenSMTPD 7.8's shapes (smtp_session.c: smtp_connected, smtp_reply's failed-command, the
 * IMSG_SMTP_AUTHENTICATE answer's authentication line, smtp_tx_eom's message and envelope lines),
 * so parsers written for OpenSMTPD read tsmtpd's.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { eventually, startMailHost, type MailHost } from '../harness/mail.js';
import { makeTestPki, type TestPki } from '../harness/certs.js';
import { freePort, SmtpTestClient } from '../harness/net.js';

let host: MailHost;
let pki: TestPki;
let smtps: number;

before(async () => {
  pki = await makeTestPki();
  const mx = await pki.issue('mx.example.test');
  const hash = execFileSync('openssl', ['passwd', '-6', 'alice-secret']).toString().trim();
  await writeFile(join(pki.dir, 'creds'), `alice ${hash}\n`);
  smtps = await freePort();
  host = await startMailHost({
    extra: [
      `pki mx.example.test cert "${mx.cert}"`,
      `pki mx.example.test key "${mx.key}"`,
      `table creds file:${join(pki.dir, 'creds')}`,
      `listen on 127.0.0.1 port ${smtps} smtps pki mx.example.test auth <creds> hostname mx.example.test`,
    ].join('\n'),
  });
});
after(async () => {
  await host.stop();
});

async function client(): Promise<SmtpTestClient> {
  const ca = await readFile(pki.ca);
  const socket = await new Promise<import('node:tls').TLSSocket>((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port: smtps, servername: 'mx.example.test', ca }, () => resolve(s));
    s.once('error', reject);
  });
  const c = SmtpTestClient.over(socket);
  assert.equal((await c.reply()).code, 220);
  assert.equal((await c.cmd('EHLO client.test')).code, 250);
  return c;
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** The lines of one session, found by the id its `connected` line carries. */
async function sessionLines(address: string): Promise<string[]> {
  const connected = await host.daemon.waitForLog(new RegExp(`^[0-9a-f]{16} smtp connected address=${address.replaceAll('.', '\\.')} host=`, 'm'));
  const id = /^([0-9a-f]{16}) smtp connected/m.exec(connected)![1]!;
  return host.daemon.logs().split('\n').filter((l) => l.startsWith(`${id} smtp `));
}

test('smtp_connected, failed-command for AUTH PLAIN and AUTH LOGIN, authentication, message and envelope lines', async () => {
  const c = await client();
  try {
    assert.equal((await c.cmd(`AUTH PLAIN ${b64('\0alice\0wrong')}`)).code, 535);
    assert.equal((await c.cmd('AUTH LOGIN')).code, 334);
    assert.equal((await c.cmd(b64('alice'))).code, 334);
    assert.equal((await c.cmd(b64('wrong-again'))).code, 535);
    assert.equal((await c.cmd(`AUTH PLAIN ${b64('\0alice\0alice-secret')}`)).code, 235);
    assert.equal((await c.cmd('MAIL FROM:<alice@example.test>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<nobody@elsewhere.test>')).code, 550);
    assert.equal((await c.cmd('RCPT TO:<bob@example.test>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    const done = await c.cmd('Subject: shapes\r\n\r\nhello\r\n.');
    assert.equal(done.code, 250);
    await c.cmd('QUIT');
  } finally {
    c.close();
  }
  await eventually(async () => (await sessionLines('127.0.0.1')).some((l) => / smtp envelope /.test(l)) || undefined, 'the envelope line');
  const lines = await sessionLines('127.0.0.1');
  const id = lines[0]!.slice(0, 16);
  const shape = (re: RegExp) => assert.ok(lines.some((l) => re.test(l.slice(17))), `${re} in\n${lines.join('\n')}`);
  // the test's resolver has no PTR for 127.0.0.1: OpenSMTPD's "<unknown>"
  shape(/^smtp connected address=127\.0\.0\.1 host=\S+$/);
  shape(/^smtp tls ciphers=TLSv1\.3:TLS_\w+:\d+$/);
  shape(/^smtp authentication user=alice result=permfail$/);
  shape(/^smtp failed-command command="AUTH PLAIN \(\.\.\.\)" result="535 5\.7\.8 Authentication failed"$/);
  shape(/^smtp failed-command command="AUTH LOGIN \(password\)" result="535 5\.7\.8 Authentication failed"$/);
  shape(/^smtp authentication user=alice result=ok$/);
  shape(/^smtp failed-command command="RCPT TO:<nobody@elsewhere\.test>" result="550 [^"]+"$/);
  shape(/^smtp message msgid=[0-9a-f]{8} size=\d+ nrcpt=1 proto=ESMTP$/);
  shape(/^smtp envelope evpid=[0-9a-f]{16} from=<alice@example\.test> to=<bob@example\.test>$/);
  // the envelope line names the envelope the queue stored (its id leads with the message's)
  const msgid = /msgid=([0-9a-f]{8})/.exec(lines.find((l) => l.includes(' smtp message '))!)![1]!;
  assert.ok(lines.some((l) => l.includes(`smtp envelope evpid=${msgid}`)), lines.join('\n'));
  // no password, not even base64, reaches the log
  assert.ok(!host.daemon.logs().includes(b64('\0alice\0alice-secret')) && !host.daemon.logs().includes(b64('wrong-again')));
  assert.ok(lines.every((l) => l.startsWith(id)));
  // a log reader joins the lines by evpid, as pflogsumm-style reports do: the envelope the smtp
  // line names is the one whose delivery (mda_log()) follows
  const evpid = /smtp envelope evpid=([0-9a-f]{16})/.exec(lines.join('\n'))![1]!;
  await host.daemon.waitForLog(new RegExp(`^[0-9a-f]{16} mda delivery evpid=${evpid} from=<alice@example\\.test> to=<bob@example\\.test> user=\\S+ delay=\\w+ result=Ok stat=Delivered$`, 'm'));
});
