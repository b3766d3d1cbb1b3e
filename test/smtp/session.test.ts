/**
 * Session dialogs over real loopback sockets against the smtp role: banner, EHLO, in-order
 * replies to pipelined commands, limits, timeouts, shutdown, and 451 when the lka cannot answer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus } from '../../src/bus/bus.js';
import { FakeClock } from '../../src/clock.js';
import type { Config, Listener } from '../../src/config/types.js';
import { createSmtpRole } from '../../src/smtp/role.js';
import { createStatRole } from '../../src/stat/role.js';
import { SESSION_LIMITS } from '../../src/smtp/limits.js';
import { freePort, SmtpTestClient } from '../harness/net.js';

function listener(port: number): Listener {
  return {
    kind: 'inet', interface: '127.0.0.1', family: 'any', port, tls: 'none', tlsVerify: false, pki: [],
    auth: 'none', maskSrc: false, noDsn: false, proxyV2: false, receivedAuth: false,
    hostname: 'mx.test.local', where: { file: 't', line: 1 },
  };
}

async function server(limits = SESSION_LIMITS) {
  const port = await freePort();
  const config = { listeners: [listener(port)], smtp: { maxMessageSize: 35 * 1024 * 1024 } } as unknown as Config;
  const bus = new Bus({ checkSerializable: true });
  const ctx = {
    config, clock: new FakeClock(), spool: '/nonexistent', serverName: 'ignored.test',
    backends: { queue: 'ram', scheduler: 'ramqueue', stat: 'ram' }, verbose: false,
  };
  const stat = createStatRole({ ...ctx, bus: bus.endpoint('stat') });
  const smtp = createSmtpRole({ ...ctx, bus: bus.endpoint('smtp') }, limits);
  bus.register(stat);
  bus.register(smtp);
  await smtp.start();
  return { port, bus, smtp };
}

test('banner, EHLO capabilities, NOOP, RSET, HELP, VRFY, EXPN, QUIT', async () => {
  const { port, smtp } = await server();
  const c = await SmtpTestClient.connect(port);
  try {
    assert.deepEqual((await c.reply()).lines, ['220 mx.test.local ESMTP tsmtpd']);
    const ehlo = await c.cmd('EHLO client.example');
    assert.equal(ehlo.code, 250);
    assert.match(ehlo.lines[0]!, /^250-mx\.test\.local Hello client\.example \[127\.0\.0\.1\]/);
    assert.deepEqual(ehlo.lines.slice(1).map((l) => l.slice(4)), ['8BITMIME', 'ENHANCEDSTATUSCODES', 'SIZE 36700160', 'DSN', 'SMTPUTF8', 'CHUNKING', 'PIPELINING', 'HELP']);
    assert.equal((await c.cmd('NOOP')).lines[0], '250 2.0.0 Ok');
    assert.equal((await c.cmd('RSET')).code, 250);
    assert.equal((await c.cmd('HELP')).code, 214);
    assert.equal((await c.cmd('VRFY root')).code, 252);
    assert.equal((await c.cmd('EXPN staff')).code, 502);
    assert.equal((await c.cmd('QUIT')).lines[0], '221 2.0.0 Bye');
    await c.closedByPeer();
  } finally {
    c.close();
    await smtp.stop();
  }
});

test('sequence and syntax: MAIL before HELO, bad HELO argument, unknown verb, NUL in a command', async () => {
  const { port, smtp } = await server();
  const c = await SmtpTestClient.connect(port);
  try {
    await c.reply();
    assert.match((await c.cmd('MAIL FROM:<a@b.example>')).lines[0]!, /^503 5\.5\.1 .*HELO first/);
    assert.equal((await c.cmd('HELO bad_name!')).code, 501);
    assert.equal((await c.cmd('HELO [127.0.0.1]')).code, 250);
    assert.equal((await c.cmd('FROB')).lines[0], '500 5.5.1 Invalid command: Command unrecognized');
    assert.equal((await c.cmd('NOOP \x00x')).code, 501);
    assert.equal((await c.cmd('RCPT TO:<x@y.example>')).code, 503);
    assert.equal((await c.cmd('MAIL FROM:nobrackets')).code, 501);
  } finally {
    c.close();
    await smtp.stop();
  }
});

test('without an lka nothing is accepted: MAIL needs none (no senders table to ask, as smtp_tx_mail_from), RCPT is answered 451, never 250', async () => {
  const { port, smtp } = await server();
  const c = await SmtpTestClient.connect(port);
  try {
    await c.reply();
    await c.cmd('EHLO client.example');
    assert.equal((await c.cmd('MAIL FROM:<a@b.example>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<x@y.example>')).lines[0], '451 4.3.0 Temporary failure');
  } finally {
    c.close();
    await smtp.stop();
  }
});

test('pipelined commands in one packet are answered in order', async () => {
  const { port, smtp } = await server();
  const c = await SmtpTestClient.connect(port);
  try {
    await c.reply();
    c.write('EHLO a.example\r\nMAIL FROM:<x@y.example>\r\nRCPT TO:<a@b.example>\r\nNOOP\r\nFROB\r\nQUIT\r\n');
    const codes = [];
    for (let i = 0; i < 6; i++) codes.push((await c.reply()).code);
    assert.deepEqual(codes, [250, 250, 451, 250, 500, 221]);
  } finally {
    c.close();
    await smtp.stop();
  }
});

test('an over-long line gets 500 5.5.2 and the session carries on', async () => {
  const { port, smtp } = await server();
  const c = await SmtpTestClient.connect(port);
  try {
    await c.reply();
    // under 64 KiB: past that without a LF the session ends (issue-13 tests)
    c.write('NOOP ' + 'x'.repeat(60_000) + '\r\n');
    assert.equal((await c.reply()).lines[0], '500 5.5.2 Line too long');
    assert.equal((await c.cmd('NOOP')).code, 250);
  } finally {
    c.close();
    await smtp.stop();
  }
});

test('too many bad commands close the session with 421', async () => {
  const { port, smtp } = await server({ ...SESSION_LIMITS, maxErrors: 3 });
  const c = await SmtpTestClient.connect(port);
  try {
    await c.reply();
    assert.equal((await c.cmd('BAD1')).code, 500);
    assert.equal((await c.cmd('BAD2')).code, 500);
    assert.equal((await c.cmd('BAD3')).code, 500);
    assert.equal((await c.reply()).lines[0], '421 4.7.0 Too many errors, closing connection');
    await c.closedByPeer();
  } finally {
    c.close();
    await smtp.stop();
  }
});

test('an idle session times out with 421 4.4.2', async () => {
  const { port, smtp } = await server({ ...SESSION_LIMITS, idleTimeoutMs: 200 });
  const c = await SmtpTestClient.connect(port);
  try {
    await c.reply();
    assert.equal((await c.reply(5000)).lines[0], '421 4.4.2 Timeout, closing connection');
    await c.closedByPeer();
  } finally {
    c.close();
    await smtp.stop();
  }
});

test('sessions over the per-address cap are refused with 421', async () => {
  const { port, smtp } = await server({ ...SESSION_LIMITS, maxSessionsPerAddress: 2, exemptLoopback: false });
  const clients = [await SmtpTestClient.connect(port), await SmtpTestClient.connect(port)];
  try {
    for (const c of clients) assert.equal((await c.reply()).code, 220);
    const third = await SmtpTestClient.connect(port);
    clients.push(third);
    assert.equal((await third.reply()).lines[0], '421 4.7.0 Too many sessions, try again later');
    clients[0]!.close();
    await new Promise((r) => setTimeout(r, 50));
    const again = await SmtpTestClient.connect(port);
    clients.push(again);
    assert.equal((await again.reply()).code, 220);
  } finally {
    for (const c of clients) c.close();
    await smtp.stop();
  }
});

test('stop sends 421 to open sessions and closes the listener', async () => {
  const { port, smtp } = await server();
  const c = await SmtpTestClient.connect(port);
  await c.reply();
  await smtp.stop();
  assert.equal((await c.reply()).lines[0], '421 4.3.2 Service shutting down');
  await c.closedByPeer();
  await assert.rejects(SmtpTestClient.connect(port), /ECONNREFUSED/);
});

test('session counters reach the stat role', async () => {
  const { port, smtp, bus } = await server();
  const c = await SmtpTestClient.connect(port);
  await c.reply();
  await c.cmd('QUIT');
  await c.closedByPeer();
  await new Promise((r) => setTimeout(r, 20));
  bus.register({ name: 'control', peers: ['stat'], handlers: {} as never, start: async () => {}, stop: async () => {} });
  const { stats } = await bus.request('control', 'control.stat.list', {});
  assert.equal(stats.find((s) => s.key === 'smtp.session.total')?.value, 1);
  assert.equal(stats.find((s) => s.key === 'smtp.session')?.value, 0);
  await smtp.stop();
});
