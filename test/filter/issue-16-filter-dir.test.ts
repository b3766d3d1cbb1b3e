/**
 * Issue 16: Debian's filter packages start from configs that name them without a path, as
 * smtpd's fork_filter_process() runs them from its filter directory (/usr/libexec/opensmtpd):
 * filter-rspamd against an rspamd stand-in over HTTP on loopback, filter-senderscore against a
 * DNS stand-in on loopback (its Go resolver reads /etc/resolv.conf, replaced in a private mount
 * namespace), and filter-dkimsign. The daemon's PATH does not include the filter directory.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { chmod, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDnsServer, type DnsServer } from '../harness/dns-server.js';
import { machineCommand } from '../harness/machine.js';
import { eventually, sendMessage, startMailHost, type MailHost } from '../harness/mail.js';
import { SmtpTestClient } from '../harness/net.js';
import { peerSkip } from '../harness/peers.js';

/** The daemon's PATH leaves the filter directory out, so only the libexec lookup finds filters. */
const PATH = '/usr/local/bin:/usr/bin:/bin';
const inbox = (host: MailHost, user: string) => eventually(async () => { const m = await host.maildir(user); return m.length ? m : undefined; }, `delivery to ${user}`);

/** rspamd's /checkv2 as filter-rspamd reads it: the Subject decides the verdict. */
async function rspamdStandIn(): Promise<{ server: Server; port: number; requests: IncomingHttpHeaders[] }> {
  const requests: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      requests.push(req.headers);
      const verdict = /^Subject: .*reject-me/m.test(body)
        ? { action: 'reject', score: 20, required_score: 15, messages: { smtp_message: 'spam detected by stand-in' } }
        : /^Subject: .*spammy/m.test(body)
          ? { action: 'add header', score: 9.5, required_score: 6, symbols: { STAND_IN: { score: 9.5 } } }
          : { action: 'no action', score: 0.1, required_score: 6 };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(verdict));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, requests };
}

describe('filter-rspamd from "filter-rspamd -url ..." (Debian opensmtpd-filter-rspamd)', { skip: peerSkip('filter-rspamd') }, () => {
  let host: MailHost;
  let rspamd: Awaited<ReturnType<typeof rspamdStandIn>>;

  before(async () => {
    rspamd = await rspamdStandIn();
    host = await startMailHost({
      listen: false,
      extra: [
        `filter "rspamd" proc-exec "filter-rspamd -url http://127.0.0.1:${rspamd.port}"`,
        'listen on 127.0.0.1 port %PORT% hostname mx.example.test filter "rspamd"',
      ].join('\n'),
      wrap: async (argv) => ({ file: 'env', args: [`PATH=${PATH}`, ...argv] }),
    });
  });
  after(async () => {
    await host?.stop();
    rspamd?.server.close();
  });

  it('scores every message through rspamd and marks spam with its headers', async () => {
    assert.equal((await sendMessage(host.port, 'friend@good.test', ['alice@example.test'], 'Subject: spammy offer\r\n\r\nbuy')).at(-1)!.code, 250);
    const [msg] = await inbox(host, 'alice');
    assert.match(msg!, /^X-Spam: yes$/m);
    assert.match(msg!, /^X-Spam-Score: 9\.5 \/ 6$/m);
    const asked = rspamd.requests.at(-1)!;
    assert.equal(asked.from, 'friend@good.test');
    assert.equal(asked.rcpt, 'alice@example.test');
    assert.equal(asked.ip, '127.0.0.1');
  });

  it('a reject from rspamd refuses the message at the final dot', async () => {
    const replies = await sendMessage(host.port, 'friend@good.test', ['bob@example.test'], 'Subject: reject-me\r\n\r\nx');
    assert.equal(replies.at(-1)!.code, 550);
    assert.match(replies.at(-1)!.text, /spam detected by stand-in/);
  });
});

describe('filter-senderscore from "filter-senderscore -blockBelow 50 -scoreHeader", its DNS answered on loopback', { skip: peerSkip('filter-senderscore', 'namespaces') }, () => {
  let host: MailHost;
  let dns: DnsServer;

  before(async () => {
    // score.senderscore.com answers 127.0.4.SCORE; 127.0.0.1 scores 20, 127.0.0.2 scores 90
    dns = await startDnsServer({
      '1.0.0.127.score.senderscore.com': { A: ['127.0.4.20'] },
      '2.0.0.127.score.senderscore.com': { A: ['127.0.4.90'] },
    }, { host: '127.3.5.3', port: 53 });
    host = await startMailHost({
      listen: false,
      extra: [
        'filter "senderscore" proc-exec "filter-senderscore -blockBelow 50 -scoreHeader"',
        'listen on 127.0.0.1 port %PORT% hostname mx.example.test filter "senderscore"',
      ].join('\n'),
      wrap: async (argv, dir) => machineCommand(dir, { etc: { 'resolv.conf': 'nameserver 127.3.5.3\n' } }, ['env', `PATH=${PATH}`, ...argv]),
    });
  });
  after(async () => {
    await host?.stop();
    await dns?.close();
  });

  it('a client with a low score is disconnected at connect with the filter\'s reply', async () => {
    const c = await SmtpTestClient.connect(host.port, '127.0.0.1', '127.0.0.1');
    const r = await c.reply();
    assert.equal(r.code, 550);
    assert.match(r.text, /IP reputation is too low/);
    await c.closedByPeer();
    assert.ok(dns.queries.some((q) => q.name === '1.0.0.127.score.senderscore.com'));
  });

  it('a client with a good score gets through, and the message carries its score', async () => {
    const c = await SmtpTestClient.connect(host.port, '127.0.0.1', '127.0.0.2');
    assert.equal((await c.reply()).code, 220);
    await c.cmd('EHLO client.test');
    assert.equal((await c.cmd('MAIL FROM:<friend@good.test>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<alice@example.test>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    assert.equal((await c.cmd('Subject: scored\r\n\r\nhello\r\n.')).code, 250);
    c.close();
    const [msg] = await inbox(host, 'alice');
    assert.match(msg!, /^X-SenderScore: 90$/m);
  });
});

describe('filter-dkimsign from "filter-dkimsign -d ... -s ... -k ..." (Debian opensmtpd-filter-dkimsign)', { skip: peerSkip('filter-dkimsign', 'openssl') }, () => {
  let host: MailHost;

  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-dkim-'));
    const key = join(dir, 'dkim.key');
    execFileSync('openssl', ['genrsa', '-out', key, '2048'], { stdio: 'ignore' });
    // the filter runs as the daemon's unprivileged user: it must be able to read its key
    await chmod(dir, 0o755);
    await chmod(key, 0o644);
    host = await startMailHost({
      listen: false,
      extra: [
        `filter "dkimsign" proc-exec "filter-dkimsign -d example.test -s sel2024 -k ${key}"`,
        'listen on 127.0.0.1 port %PORT% hostname mx.example.test filter "dkimsign"',
      ].join('\n'),
      wrap: async (argv) => ({ file: 'env', args: [`PATH=${PATH}`, ...argv] }),
    });
  });
  after(() => host?.stop());

  it('signs the message', async () => {
    const body = 'From: alice@example.test\r\nTo: bob@example.test\r\nSubject: signed\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\n\r\nSigned body.';
    assert.equal((await sendMessage(host.port, 'alice@example.test', ['bob@example.test'], body)).at(-1)!.code, 250);
    const [msg] = await inbox(host, 'bob');
    assert.match(msg!, /^DKIM-Signature: v=1; a=rsa-sha256;/m);
    assert.match(msg!, /\bd=example\.test;/);
    assert.match(msg!, /\bs=sel2024;/);
  });
});
