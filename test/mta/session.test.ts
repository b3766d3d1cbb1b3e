/** One client session against the scripted sink: dialog, per-recipient results, TLS modes, AUTH, hostile replies. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../src/clock.js';
import { fileBody } from '../../src/queue/body-ref.js';
import { DEFAULT_TIMEOUTS, SmtpClientSession, type SessionParams, type Transaction } from '../../src/mta/session.js';
import { MtaSessionError } from '../../src/mta/session-error.js';
import { makeCert, Sink, type SinkOptions } from './sink.js';

const cert = makeCert(['mx1.test', '127.0.0.2']);
const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-mta-session-'));
after(() => rm(dir, { recursive: true, force: true }));
const BODY = 'Subject: hi\r\n\r\n.leading dot\r\n..two\r\nend\r\n';
const bodyPath = join(dir, 'body');
await writeFile(bodyPath, BODY);

async function withSink(o: Partial<SinkOptions>, fn: (sink: Sink, p: SessionParams) => Promise<void>): Promise<void> {
  const sink = await Sink.start({ host: '127.0.0.2', cert, ...o });
  const p: SessionParams = {
    address: '127.0.0.2', port: sink.port, hostname: 'mx1.test', tls: 'none', verify: false, helo: 'client.test',
    lmtp: false, timeouts: { ...DEFAULT_TIMEOUTS, command: 5000, dataEnd: 5000 }, clock: systemClock,
  };
  try {
    await fn(sink, p);
  } finally {
    await sink.close();
  }
}

async function tx(rcpts: string[], over: Partial<Transaction> = {}): Promise<Transaction> {
  return { sender: 'alice@src.test', rcpts: rcpts.map((rcpt) => ({ rcpt, dsn: {} })), smtputf8: false, body: await fileBody(bodyPath), ...over };
}

test('a pipelined transaction: per-recipient 2xx/4xx/5xx, ESMTP params only as offered, dot-stuffed body', async () => {
  const rcpt = (a: string) => (a.startsWith('bad') ? '550 5.1.1 no such user' : a.startsWith('later') ? '451 4.3.0 try later' : undefined);
  await withSink({ caps: ['PIPELINING', 'DSN', 'SIZE 100000'], rcpt }, async (sink, p) => {
    const s = await SmtpClientSession.open(p);
    const t = await tx(['ok@dst.test', 'bad@dst.test', 'later@dst.test'], { ret: 'HDRS', envid: 'id+1' });
    t.rcpts[0]!.dsn = { notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;Ok@dst.test' };
    const results = await s.send(t);
    await s.quit();
    // the remote's answers name it (Remote-MTA); an SMTP next hop offering DSN took NOTIFY over
    assert.deepEqual(results[0], { result: 'ok', detail: '250 2.0.0 queued', remoteMta: 'mx1.test', relayed: { dsn: true } });
    assert.deepEqual(results[1], { result: 'permfail', enhanced: '5.1.1', detail: '550 5.1.1 no such user', remoteMta: 'mx1.test' });
    assert.deepEqual(results[2], { result: 'tempfail', enhanced: '4.3.0', detail: '451 4.3.0 try later', remoteMta: 'mx1.test' });
    assert.equal(sink.transactions.length, 1);
    const got = sink.transactions[0]!;
    assert.equal(got.mail, `MAIL FROM:<alice@src.test> SIZE=${Buffer.byteLength(BODY)} RET=HDRS ENVID=id+2B1`);
    assert.deepEqual(got.rcpts, ['RCPT TO:<ok@dst.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Ok@dst.test']);
    assert.equal(got.body, BODY);
  });
});

test('PIPELINING: MAIL, the RCPTs and DATA leave in one write (RFC 2920 3.1, as Postfix sends them); the body waits for 354', async () => {
  await withSink({ caps: ['PIPELINING'] }, async (sink, p) => {
    const s = await SmtpClientSession.open(p);
    assert.deepEqual((await s.send(await tx(['a@dst.test', 'b@dst.test']))).map((r) => r.result), ['ok', 'ok']);
    await s.quit();
    const group = sink.reads[0]!.find((r) => r.startsWith('MAIL'))!;
    assert.equal(group, 'MAIL FROM:<alice@src.test>\r\nRCPT TO:<a@dst.test>\r\nRCPT TO:<b@dst.test>\r\nDATA\r\n');
    assert.equal(sink.transactions[0]!.body, BODY);
  });
});

test('PIPELINING: every RCPT refused, so DATA gets 503 and no body is sent; a server that answers 354 anyway gets an empty body', async () => {
  const rcpt = () => '550 5.1.1 no such user';
  await withSink({ caps: ['PIPELINING'], rcpt }, async (sink, p) => {
    const s = await SmtpClientSession.open(p);
    assert.deepEqual((await s.send(await tx(['x@dst.test']))).map((r) => r.detail), ['550 5.1.1 no such user']);
    assert.deepEqual((await s.send(await tx(['y@dst.test']))).map((r) => r.result), ['permfail'], 'the session still works');
    await s.quit();
    assert.deepEqual(sink.commands[0]!.filter((c) => !/^(EHLO|QUIT)/.test(c)), [
      'MAIL FROM:<alice@src.test>', 'RCPT TO:<x@dst.test>', 'DATA', 'RSET', 'MAIL FROM:<alice@src.test>', 'RCPT TO:<y@dst.test>', 'DATA', 'RSET',
    ]);
  });
  // the sink's scripted 354 leaves it reading commands, so the lone dot shows up among them
  await withSink({ caps: ['PIPELINING'], rcpt, replies: { DATA: '354 go ahead' } }, async (sink, p) => {
    const s = await SmtpClientSession.open(p);
    assert.deepEqual((await s.send(await tx(['x@dst.test']))).map((r) => r.result), ['permfail']);
    await s.quit();
    assert.deepEqual(sink.commands[0]!.filter((c) => !/^(EHLO|QUIT)/.test(c)), ['MAIL FROM:<alice@src.test>', 'RCPT TO:<x@dst.test>', 'DATA', '.', 'RSET']);
  });
});

test('EHLO refused: HELO fallback and no ESMTP parameters; no RSET after a completed transaction', async () => {
  await withSink({ noEhlo: true }, async (sink, p) => {
    const s = await SmtpClientSession.open(p);
    const t = await tx(['a@dst.test'], { ret: 'FULL' });
    t.rcpts[0]!.dsn = { notify: ['NEVER'] };
    assert.equal((await s.send(t))[0]!.result, 'ok');
    assert.equal((await s.send(await tx(['b@dst.test'])))[0]!.result, 'ok');
    await s.quit();
    assert.equal(sink.connections, 1);
    const cmds = sink.commands[0]!;
    assert.deepEqual(cmds.filter((c) => /^(HELO|MAIL|RCPT|RSET)/.test(c)), [
      'HELO client.test', 'MAIL FROM:<alice@src.test>', 'RCPT TO:<a@dst.test>', 'MAIL FROM:<alice@src.test>', 'RCPT TO:<b@dst.test>',
    ]);
  });
});

test('opportunistic STARTTLS without verification; plaintext when not offered', async () => {
  await withSink({ caps: ['STARTTLS'] }, async (sink, p) => {
    const s = await SmtpClientSession.open({ ...p, tls: 'opportunistic' });
    assert.equal(s.secure, true);
    await s.send(await tx(['a@dst.test']));
    await s.quit();
    assert.equal(sink.transactions[0]!.tls, true);
    assert.equal(sink.commands[0]!.filter((c) => c.startsWith('EHLO')).length, 2, 'EHLO again after TLS');
  });
  await withSink({ caps: [] }, async (_sink, p) => {
    const s = await SmtpClientSession.open({ ...p, tls: 'opportunistic' });
    assert.equal(s.secure, false);
    await s.quit();
  });
});

test('required TLS: verified against the CA and the MX name; a wrong name or missing STARTTLS fails', async () => {
  await withSink({ caps: ['STARTTLS'] }, async (sink, p) => {
    const s = await SmtpClientSession.open({ ...p, tls: 'required', verify: true, ca: [cert.cert] });
    assert.equal(s.verified, true);
    await s.quit();
    await assert.rejects(SmtpClientSession.open({ ...p, hostname: 'other.test', tls: 'required', verify: true, ca: [cert.cert] }),
      (e: MtaSessionError) => e.stage === 'tls');
    await assert.rejects(SmtpClientSession.open({ ...p, tls: 'required', verify: true }), (e: MtaSessionError) => e.stage === 'tls');
    const nv = await SmtpClientSession.open({ ...p, tls: 'required', verify: false });
    assert.equal(nv.secure, true);
    await nv.quit();
    assert.ok(sink.connections >= 3);
  });
  await withSink({ caps: [] }, async (_sink, p) => {
    await assert.rejects(SmtpClientSession.open({ ...p, tls: 'required' }), /STARTTLS not offered/);
  });
});

test('smtps: TLS from the first byte', async () => {
  await withSink({ smtps: true, caps: [] }, async (sink, p) => {
    const s = await SmtpClientSession.open({ ...p, tls: 'smtps', verify: true, ca: [cert.cert] });
    await s.send(await tx(['a@dst.test']));
    await s.quit();
    assert.equal(sink.transactions[0]!.tls, true);
  });
});

test('AUTH PLAIN and LOGIN over TLS; refused over plaintext; bad credentials fail', async () => {
  const auth = { user: 'relay', password: 's3cret' };
  for (const mech of ['PLAIN', 'LOGIN']) {
    await withSink({ caps: ['STARTTLS', `AUTH ${mech}`], auth }, async (sink, p) => {
      const s = await SmtpClientSession.open({ ...p, tls: 'required', auth });
      await s.send(await tx(['a@dst.test']));
      await s.quit();
      assert.equal(sink.transactions[0]!.authUser, 'relay');
    });
  }
  await withSink({ caps: ['AUTH PLAIN'], auth }, async (sink, p) => {
    await assert.rejects(SmtpClientSession.open({ ...p, tls: 'opportunistic', auth }), /insecure channel/);
    assert.ok(!sink.commands.flat().some((c) => c.startsWith('AUTH')), 'no password sent in plaintext');
  });
  await withSink({ caps: ['STARTTLS', 'AUTH PLAIN'], auth }, async (_sink, p) => {
    await assert.rejects(SmtpClientSession.open({ ...p, tls: 'required', auth: { user: 'relay', password: 'wrong' } }),
      (e: MtaSessionError) => e.stage === 'auth' && e.permanent);
  });
});

test('issue 13: AUTH answered with a reply its step does not allow is a protocol error, never a login', async () => {
  const auth = { user: 'relay', password: 's3cret' };
  const cases: [string, string][] = [['PLAIN', '250 2.7.0 fine'], ['PLAIN', '334 '], ['LOGIN', '235 2.7.0 in without a password']];
  for (const [mech, reply] of cases) {
    await withSink({ caps: ['STARTTLS', `AUTH ${mech}`], auth, replies: { AUTH: reply } }, async (sink, p) => {
      await assert.rejects(SmtpClientSession.open({ ...p, tls: 'required', auth }),
        (e: MtaSessionError) => e.stage === 'protocol' && /reply not allowed to AUTH/.test(e.detail) && !e.permanent);
      assert.ok(!sink.commands.flat().some((c) => c.startsWith('MAIL')));
    });
  }
});

test('a malicious multi-line EHLO reply (CVE-2020-8794) ends the session as a protocol error', async () => {
  await withSink({ ehloRaw: '250-sink.test\r\n250-PIPELINING\r\n\r\nMAIL FROM:<root@evil>\r\n250 OK\r\n' }, async (_sink, p) => {
    await assert.rejects(SmtpClientSession.open(p), (e: MtaSessionError) => /protocol error/.test(e.detail));
  });
  await withSink({ ehloRaw: '250-sink.test\r\n550 nope\r\n' }, async (_sink, p) => {
    await assert.rejects(SmtpClientSession.open(p), /reply code changed/);
  });
});

test('a SIZE limit below the message is a permanent failure without sending it', async () => {
  await withSink({ caps: ['SIZE 10'] }, async (sink, p) => {
    const s = await SmtpClientSession.open(p);
    const [r] = await s.send(await tx(['a@dst.test']));
    await s.quit();
    assert.deepEqual(r, { result: 'permfail', enhanced: '5.3.4', detail: 'message too large for remote host' });
    assert.equal(sink.transactions.length, 0);
  });
});

test('a 5xx at DATA end fails every accepted recipient; banner 554 is a permanent greeting error', async () => {
  await withSink({ dataEnd: () => '554 5.7.1 spam' }, async (_sink, p) => {
    const s = await SmtpClientSession.open(p);
    const rs = await s.send(await tx(['a@dst.test', 'b@dst.test']));
    await s.quit();
    assert.deepEqual(rs.map((r) => r.result), ['permfail', 'permfail']);
  });
  await withSink({ banner: '554 5.7.1 go away\r\n' }, async (_sink, p) => {
    await assert.rejects(SmtpClientSession.open(p), (e: MtaSessionError) => e.stage === 'greeting' && e.permanent);
  });
});
