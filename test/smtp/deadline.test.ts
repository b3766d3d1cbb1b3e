/**
 * Issue 13 (slow clients): the deadline a session keeps on its client, on a fake clock — unit
 * semantics first, then through real sockets: a command line trickled a byte at a time, and a
 * body sent slower than the minimum rate, both end in 421 4.4.2 however often bytes arrive.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../src/clock.js';
import { Deadline } from '../../src/smtp/deadline.js';
import { startSmtpRole } from '../harness/smtp-role.js';
import { SmtpTestClient } from '../harness/net.js';
import { eventually } from '../harness/mail.js';

test('a deadline runs only while started and running, keeps what is left while held, and earns at most its budget back', async () => {
  const clock = new FakeClock();
  let expired = 0;
  const d = new Deadline(clock, () => expired++);
  d.run();
  await clock.advance(10_000);
  assert.equal(expired, 0, 'not started: nothing runs');
  d.start(1000);
  await clock.advance(5000);
  assert.equal(expired, 0, 'started but held (the server is busy)');
  d.run();
  await clock.advance(600);
  d.hold();
  await clock.advance(5000);
  assert.equal(expired, 0, '400 ms left, kept while held');
  d.credit(10_000);
  d.run();
  await clock.advance(999);
  assert.equal(expired, 0, 'credit restores the budget, and no more than it');
  await clock.advance(1);
  assert.equal(expired, 1);
  assert.equal(d.active, false);
  d.start(1000);
  d.run();
  d.stop();
  await clock.advance(5000);
  assert.equal(expired, 1, 'stopped: nothing fires');
});

async function slowRole(clock: FakeClock) {
  return startSmtpRole({ listeners: [{}], timers: clock, limits: { commandTimeMs: 30_000, idleTimeoutMs: 5_000, minDataRate: 1000 } });
}

/** Let bytes just written reach the session before the fake clock moves (the deadline reads it). */
const delivered = () => new Promise((r) => setTimeout(r, 5));

async function client(port: number): Promise<SmtpTestClient> {
  const c = await SmtpTestClient.connect(port);
  // each write its own segment, now: Nagle would hold it for the delayed ACK and blur the steps
  c.socket.setNoDelay(true);
  return c;
}

test('a command line sent a byte at a time is cut at max-command-time, however often its bytes come', async () => {
  const clock = new FakeClock();
  const role = await slowRole(clock);
  const c = await client(role.ports[0]!);
  try {
    await c.reply();
    // a whole line within the time is fine, and each line gets a fresh budget
    for (let i = 0; i < 3; i++) {
      c.write('NO');
      await eventually(async () => clock.pending() > 0 || undefined, 'the deadline to start');
      await clock.advance(20_000);
      assert.equal((await c.cmd('OP')).code, 250);
    }
    for (const byte of 'EHLO slow.example') {
      c.write(byte);
      await delivered();
      await clock.advance(2000);
    }
    assert.equal((await c.reply()).lines[0], '421 4.4.2 Too slow, closing connection');
    await c.closedByPeer();
  } finally {
    c.close();
    await role.stop();
  }
  assert.match(role.logs.join('\n'), /disconnected reason=too-slow-line/);
});

test('a body at min-data-rate goes on past its budget; a slower one is cut', async () => {
  const clock = new FakeClock();
  const role = await slowRole(clock);
  const c = await client(role.ports[0]!);
  try {
    await c.reply();
    await c.cmd('EHLO slow.example');
    await c.cmd('MAIL FROM:<a@slow.example>');
    await c.cmd('RCPT TO:<b@slow.example>');
    assert.equal((await c.cmd('DATA')).code, 354);
    // 1000 octets a second for 20 s, four times the 5 s budget: each second is paid for
    const line = 'x'.repeat(998) + '\r\n';
    for (let i = 0; i < 20; i++) {
      c.write(line);
      await delivered();
      await clock.advance(1000);
    }
    assert.equal((await c.cmd('.')).code, 250);
    assert.equal((await c.cmd('MAIL FROM:<a@slow.example>')).code, 250);
    await c.cmd('RCPT TO:<b@slow.example>');
    assert.equal((await c.cmd('DATA')).code, 354);
    // ten octets a second: the budget runs out within a few seconds however often bytes come
    for (let i = 0; i < 20 && !c.socket.readableEnded; i++) {
      c.write('0123456789');
      await delivered();
      await clock.advance(1000);
    }
    assert.equal((await c.reply()).lines[0], '421 4.4.2 Too slow, closing connection');
  } finally {
    c.close();
    await role.stop();
  }
  assert.match(role.logs.join('\n'), /disconnected reason=too-slow-body/);
});
