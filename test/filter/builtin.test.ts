/**
 * Builtin filters (`filter NAME phase PHASE match CONDITIONS DECISION`) on a real daemon: each
 * decision at the phase it belongs to, conditions on tables and literals, negation, and a chain.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, sendMessage, startMailHost, type MailHost } from '../harness/mail.js';
import { SmtpTestClient } from '../harness/net.js';

describe('builtin filters', () => {
  let host: MailHost;

  before(async () => {
    host = await startMailHost({
      listen: false,
      extra: [
        'table badsenders { "spammer@evil.test" }',
        'table junkhelo { junk.example.test }',
        'filter "noconnect" phase connect match src 127.0.0.3 disconnect "554 5.7.1 Go away"',
        // issue 16: smtpd takes any text; this one is no valid reply, so the client gets 421
        'filter "badtext" phase connect match src 127.0.0.4 disconnect "550. Rejected. No rDNS."',
        'filter "nosender" phase mail-from match mail-from <badsenders> reject "550 5.7.1 Sender refused by policy"',
        'filter "junkhelo" phase ehlo match helo <junkhelo> junk',
        'filter "carol" phase rcpt-to match rcpt-to "carol@example.test" rewrite "bob@example.test"',
        'filter "needhelo" phase data match !helo regex "\\.example\\.test$" reject "550 5.7.1 Say who you are"',
        'filter "f" chain { "noconnect", "badtext", "nosender", "junkhelo", "carol", "needhelo" }',
        'listen on 127.0.0.1 port %PORT% hostname mx.example.test filter "f"',
      ].join('\n'),
    });
  });
  after(() => host?.stop());

  it('a connect filter answers instead of the banner and closes', async () => {
    const c = await SmtpTestClient.connect(host.port, '127.0.0.1', '127.0.0.3');
    const r = await c.reply();
    assert.equal(r.code, 554);
    assert.match(r.text, /5\.7\.1 Go away/);
    await c.closedByPeer();
  });

  it('a reply text that is no valid SMTP reply becomes 421 Internal server error (smtp_session.c valid_smtp_response)', async () => {
    const c = await SmtpTestClient.connect(host.port, '127.0.0.1', '127.0.0.4');
    const r = await c.reply();
    assert.equal(r.code, 421);
    assert.match(r.text, /Internal server error/);
    await c.closedByPeer();
  });

  it('a mail-from filter refuses a listed sender and the session goes on', async () => {
    const c = await SmtpTestClient.connect(host.port);
    await c.reply();
    await c.cmd('EHLO client.example.test');
    const refused = await c.cmd('MAIL FROM:<spammer@evil.test>');
    assert.equal(refused.code, 550);
    assert.match(refused.text, /Sender refused by policy/);
    assert.equal((await c.cmd('MAIL FROM:<friend@good.test>')).code, 250);
    c.close();
  });

  it('junk at ehlo marks the message X-Spam; rewrite at rcpt-to changes the recipient', async () => {
    const c = await SmtpTestClient.connect(host.port);
    await c.reply();
    await c.cmd('EHLO junk.example.test');
    await c.cmd('MAIL FROM:<friend@good.test>');
    assert.equal((await c.cmd('RCPT TO:<carol@example.test>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    assert.equal((await c.cmd('Subject: rewritten\r\n\r\nhello\r\n.')).code, 250);
    c.close();
    const [msg] = await eventually(async () => { const m = await host.maildir('bob'); return m.length ? m : undefined; }, 'delivery to bob');
    assert.match(msg!, /^X-Spam: Yes$/m);
    assert.match(msg!, /Subject: rewritten/);
  });

  it('a negated regex condition at data refuses an unknown HELO, and a clean session is untouched', async () => {
    const c = await SmtpTestClient.connect(host.port);
    await c.reply();
    await c.cmd('EHLO stranger.test');
    await c.cmd('MAIL FROM:<friend@good.test>');
    await c.cmd('RCPT TO:<alice@example.test>');
    const data = await c.cmd('DATA');
    assert.equal(data.code, 550);
    assert.match(data.text, /Say who you are/);
    c.close();

    const replies = await sendMessage(host.port, 'friend@good.test', ['alice@example.test'], 'Subject: clean\r\n\r\nhi');
    assert.equal(replies.at(-1)!.code, 250);
    const [msg] = await eventually(async () => { const m = await host.maildir('alice'); return m.length ? m : undefined; }, 'delivery to alice');
    assert.doesNotMatch(msg!, /X-Spam/);
    assert.match(host.daemon.logs(), /filter-response .*filter=nosender phase=mail-from response=reject/);
  });
});
