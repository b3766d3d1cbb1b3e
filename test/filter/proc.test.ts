/**
 * smtpd-filters(7) processes on a real daemon: a filter written in Python from the manual page
 * (conformance: handshake, every decision, data-line streaming, report events in order),
 * Debian's opensmtpd-filter-dkimsign run unmodified with its signature checked by dkimpy, and
 * filters that die or stall: the session gets an answer, the daemon goes on.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { eventually, startMailHost, type MailHost } from '../harness/mail.js';
import { SmtpTestClient } from '../harness/net.js';
import { peerSkip } from '../harness/peers.js';

const run = promisify(execFile);
const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/filters');
const DKIMSIGN = '/usr/libexec/opensmtpd/filter-dkimsign';

async function delivered(host: MailHost, user: string, count = 1): Promise<string[]> {
  return eventually(async () => { const m = await host.maildir(user); return m.length >= count ? m : undefined; }, `delivery to ${user}`);
}

/** One transaction on an open client; returns the final reply. */
async function transaction(c: SmtpTestClient, from: string, to: string, body: string) {
  assert.equal((await c.cmd(`MAIL FROM:<${from}>`)).code, 250);
  assert.equal((await c.cmd(`RCPT TO:<${to}>`)).code, 250);
  assert.equal((await c.cmd('DATA')).code, 354);
  return c.cmd(`${body}\r\n.`);
}

describe('smtpd-filters protocol: a Python filter written from the manual page', { skip: peerSkip('python3') }, () => {
  let host: MailHost;
  let trace: string;

  before(async () => {
    host = await startMailHost({
      extra: [
        `filter "conf" proc-exec "/usr/bin/python3 ${FIXTURES}/conformance.py %DIR%/scratch/filter.log"`,
        'listen on 127.0.0.1 port %PORT% hostname mx.example.test filter "conf"',
      ].join('\n'),
      listen: false,
    });
    trace = join(host.dir, 'scratch', 'filter.log');
  });
  after(() => host?.stop());

  it('gets the handshake, decides every phase, and rewrites the body through data-line', async () => {
    const handshake = await readFile(trace, 'utf8');
    assert.match(handshake, /^config\|smtpd-version\|\S+$/m);
    assert.match(handshake, /^config\|protocol\|0\.7$/m);
    assert.match(handshake, /^config\|subsystem\|smtp-in$/m);
    assert.match(handshake, /^config\|ready$/m);

    const c = await SmtpTestClient.connect(host.port);
    assert.equal((await c.reply()).code, 220);
    assert.equal((await c.cmd('EHLO spammy.example.test')).code, 250);
    const blocked = await c.cmd('MAIL FROM:<blocked@evil.test>');
    assert.equal(blocked.code, 550);
    assert.match(blocked.text, /5\.7\.1 Sender blocked by conformance filter/);
    const body = 'Subject: through the filter\r\n\r\n.a line that starts with a dot\r\n..two dots\r\nend';
    // "old@" is rewritten to bob by the filter
    assert.equal((await transaction(c, 'friend@good.test', 'old@example.test', body.replace(/^\./gm, '..'))).code, 250);
    const refused = await transaction(c, 'friend@good.test', 'alice@example.test', 'Subject: x\r\n\r\nREJECT-AT-COMMIT');
    assert.equal(refused.code, 554);
    assert.match(refused.text, /Refused at commit/);
    await c.cmd('QUIT');
    c.close();

    const [msg] = await delivered(host, 'bob');
    assert.match(msg!, /^X-Conformance: [0-9a-f]{16}$/m, 'the line the filter added');
    assert.match(msg!, /^X-Spam: Yes$/m, 'junk at ehlo');
    assert.match(msg!, /^\.a line that starts with a dot\n\.\.two dots\nend\n$/m, 'dot lines survive the round trip');
    assert.deepEqual(await host.maildir('alice'), [], 'the message refused at commit was not delivered');
  });

  it('never sends a filter a line longer than it can read: such a message is refused, the filter lives on', async () => {
    const c = await SmtpTestClient.connect(host.port);
    await c.reply();
    await c.cmd('EHLO client.example.test');
    await c.cmd('MAIL FROM:<friend@good.test>');
    await c.cmd('RCPT TO:<alice@example.test>');
    const chunk = `Subject: long\r\n\r\n${'x'.repeat(70_000)}\r\n`;
    const r = await c.cmd(`BDAT ${chunk.length} LAST\r\n${chunk}`.slice(0, -2));
    assert.equal(r.code, 550);
    assert.match(r.text, /5\.5\.2 Line too long/);
    assert.equal((await transaction(c, 'friend@good.test', 'alice@example.test', 'Subject: after\r\n\r\nok')).code, 250);
    c.close();
  });

  it('reports the session as events, in order, in the documented format', async () => {
    const lines = (await readFile(trace, 'utf8')).split('\n');
    const connect = lines.find((l) => l.includes('|link-connect|'))!;
    assert.match(connect, /^report\|0\.7\|\d+\.\d{6}\|smtp-in\|link-connect\|[0-9a-f]{16}\|localhost\|pass\|127\.0\.0\.1:\d+\|127\.0\.0\.1:\d+$/);
    const session = connect.split('|')[5]!;
    const events = lines
      .filter((l) => l.startsWith('report|') && l.split('|')[5] === session)
      .map((l) => l.split('|')[4]!)
      .filter((e) => !e.startsWith('protocol-'));
    const expected = [
      'link-connect', 'link-greeting', 'filter-response', 'link-identify',
      'filter-response', // the reject of blocked@
      'tx-begin', 'tx-mail', 'filter-response' /* rewrite */, 'tx-rcpt', 'tx-data', 'tx-commit',
      'tx-begin', 'tx-mail', 'tx-rcpt', 'tx-data', 'filter-response' /* reject at commit */, 'tx-rollback',
      'link-disconnect',
    ];
    assert.deepEqual(events, expected);
    const mail = lines.find((l) => l.split('|')[4] === 'tx-mail' && l.split('|')[5] === session)!;
    assert.match(mail, /\|tx-mail\|[0-9a-f]{16}\|[0-9a-f]{8}\|ok\|friend@good\.test$/);
    assert.ok(lines.some((l) => /\|protocol-client\|[0-9a-f]{16}\|MAIL FROM:<blocked@evil\.test>$/.test(l)));
    assert.ok(lines.some((l) => /\|protocol-server\|[0-9a-f]{16}\|550 5\.7\.1 Sender blocked/.test(l)));
    assert.ok(lines.some((l) => /\|filter-response\|[0-9a-f]{16}\|rcpt-to\|rewrite\|bob@example\.test$/.test(l)));
  });
});

describe('Debian opensmtpd-filter-dkimsign, unmodified, as a proc-exec filter', { skip: peerSkip('filter-dkimsign', 'python3-dkim') }, () => {
  let host: MailHost;
  let publicKey: string;

  before(async () => {
    const aux = await mkdtemp(join(tmpdir(), 'tsmtpd-dkim-'));
    // the filter runs as the daemon's unprivileged user and reads its key from here
    await chmod(aux, 0o755);
    const key = join(aux, 'dkim.key');
    await run('openssl', ['genrsa', '-out', key, '2048']);
    await chmod(key, 0o644);
    const { stdout } = await run('openssl', ['rsa', '-in', key, '-pubout']);
    publicKey = stdout.replace(/-----[A-Z ]+-----|\s/g, '');
    host = await startMailHost({
      listen: false,
      extra: [
        `filter "dkim" proc-exec "${DKIMSIGN} -d example.test -s sel1 -k ${key}"`,
        // the same filter spoken to in OpenSMTPD 6.6's protocol, where answers put the token first
        `filter "dkim-old" proc-exec "${DKIMSIGN} -d example.test -s sel1 -k ${key}" protocol 0.4`,
        'listen on 127.0.0.1 port %PORT% hostname mx.example.test filter "dkim"',
        'listen on 127.0.0.2 port %PORT% hostname mx.example.test filter "dkim-old"',
      ].join('\n'),
    });
  });
  after(() => host?.stop());

  async function verify(message: string, name: string): Promise<void> {
    const file = join(host.dir, name);
    await writeFile(file, message.replace(/\r?\n/g, '\r\n'));
    const script = [
      'import dkim, sys',
      `record = b"v=DKIM1; k=rsa; p=${publicKey}"`,
      'def dns(name, timeout=5):',
      '    return record if name == b"sel1._domainkey.example.test." else None',
      'sys.exit(0 if dkim.verify(open(sys.argv[1], "rb").read(), dnsfunc=dns) else 1)',
    ].join('\n');
    await run('/usr/bin/python3', ['-c', script, file]);
  }

  for (const [protocol, server] of [['0.7', '127.0.0.1'], ['0.4', '127.0.0.2']] as const) {
    it(`signs the message (protocol ${protocol}) and dkimpy verifies the signature`, async () => {
      const user = protocol === '0.7' ? 'bob' : 'alice';
      const c = await SmtpTestClient.connect(host.port, server);
      await c.reply();
      await c.cmd('EHLO client.example.test');
      const body = `From: Carol <carol@example.test>\r\nTo: ${user}@example.test\r\nSubject: signed\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n\r\nSigned body.\r\n..a dot line\r\n`;
      assert.equal((await transaction(c, 'carol@example.test', `${user}@example.test`, body)).code, 250);
      c.close();
      const [msg] = await delivered(host, user);
      assert.match(msg!, /^DKIM-Signature: v=1; a=rsa-sha256;/m);
      await verify(msg!, `signed-${protocol}.eml`);
      // the verifier is not a rubber stamp: one changed body byte fails it
      await assert.rejects(verify(msg!.replace('Signed body.', 'Signed body!'), `tampered-${protocol}.eml`));
    });
  }
});

describe('a filter that dies or stalls', () => {
  let host: MailHost;

  before(async () => {
    const aux = await mkdtemp(join(tmpdir(), 'tsmtpd-filters-'));
    // the filters run as the daemon's unprivileged user and leave their marks here
    await chmod(aux, 0o777);
    // dies at its first request, the first time only; the restarted one proceeds
    const dying = join(aux, 'dying.sh');
    await writeFile(dying, [
      '#!/bin/sh',
      'while read -r line; do [ "$line" = "config|ready" ] && break; done',
      'echo "register|filter|smtp-in|mail-from"; echo "register|ready"',
      'while read -r line; do',
      `  if [ ! -e "${aux}/died" ]; then touch "${aux}/died"; exit 3; fi`,
      '  sid=$(echo "$line" | cut -d"|" -f6); tok=$(echo "$line" | cut -d"|" -f7)',
      '  echo "filter-result|$sid|$tok|proceed"',
      'done',
    ].join('\n'));
    const stalling = join(aux, 'stalling.sh');
    await writeFile(stalling, [
      '#!/bin/sh',
      'while read -r line; do [ "$line" = "config|ready" ] && break; done',
      'echo "register|filter|smtp-in|rcpt-to"; echo "register|ready"',
      'while read -r line; do :; done',
    ].join('\n'));
    host = await startMailHost({
      listen: false,
      extra: [
        'smtp timeout 2',
        `filter "dying" proc-exec "/bin/sh ${dying}"`,
        `filter "stalling" proc-exec "/bin/sh ${stalling}"`,
        'listen on 127.0.0.1 port %PORT% hostname mx.example.test filter "dying"',
        'listen on 127.0.0.2 port %PORT% hostname mx.example.test filter "stalling"',
      ].join('\n'),
    });
  });
  after(() => host?.stop());

  it('a dead filter fails the command with 451, is restarted, and the next session goes through', async () => {
    const c = await SmtpTestClient.connect(host.port);
    await c.reply();
    await c.cmd('EHLO client.example.test');
    const r = await c.cmd('MAIL FROM:<a@good.test>');
    assert.equal(r.code, 451);
    c.close();
    await host.daemon.waitForLog(/filter-exit .*filter=dying/);
    await eventually(async () => (host.daemon.logs().match(/filter-start .*filter=dying/g) ?? []).length >= 2, 'the filter restarted');
    const again = await SmtpTestClient.connect(host.port);
    await again.reply();
    await again.cmd('EHLO client.example.test');
    assert.equal((await again.cmd('MAIL FROM:<a@good.test>')).code, 250);
    again.close();
  });

  it('a stalled filter ends its session at the session timeout while other sessions are served', async () => {
    const stuck = await SmtpTestClient.connect(host.port, '127.0.0.2');
    await stuck.reply();
    await stuck.cmd('EHLO client.example.test');
    await stuck.cmd('MAIL FROM:<a@good.test>');
    stuck.write('RCPT TO:<alice@example.test>\r\n');
    // meanwhile another session on the same daemon is answered at once
    const other = await SmtpTestClient.connect(host.port, '127.0.0.2');
    assert.equal((await other.reply()).code, 220);
    assert.equal((await other.cmd('EHLO other.example.test')).code, 250);
    other.close();
    const timeout = await stuck.reply(10_000);
    assert.equal(timeout.code, 421);
    await stuck.closedByPeer();
  });
});
