/**
 * Issue 13, password guessing: each failed AUTH is answered only after OpenSMTPD's random pause
 * (smtp_auth_failure_pause: up to a second), the session ends after three, failures are counted
 * per client address (`smtp.auth.failure{address}`), and `smtp ban auth-failures N in DELAY for
 * DELAY` turns the address away with 421 until the ban ends. AUTH inside a transaction is 503
 * (RFC 4954 §4). The network timers run on a fake clock here, so no test waits or measures time.
 * AUTH is offered on the local socket listener, as on OpenSMTPD's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../src/clock.js';
import { startSmtpRole } from '../harness/smtp-role.js';
import { SmtpTestClient } from '../harness/net.js';
import { eventually } from '../harness/mail.js';

const plain = (user: string, password: string) => `AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString('base64')}`;

function role(clock: FakeClock, ban?: { failures: number; window: number; duration: number }) {
  return startSmtpRole({ listeners: [{ kind: 'socket', auth: 'optional' }], timers: clock, password: 'right', ...(ban ? { smtp: { authBan: ban } } : {}) });
}

async function greeted(path: string): Promise<SmtpTestClient> {
  const c = await SmtpTestClient.connectPath(path);
  assert.equal((await c.reply()).code, 220);
  assert.equal((await c.cmd('EHLO guesser.test')).code, 250);
  return c;
}

/** Send a wrong password; the answer waits for the pause timer, which the fake clock then passes. */
async function guess(c: SmtpTestClient, clock: FakeClock): Promise<string[]> {
  c.write(`${plain('alice', 'wrong')}\r\n`);
  await eventually(async () => clock.pending() > 0 || undefined, 'the pause to start');
  assert.equal(c.socket.readableLength, 0, 'no answer before the pause is over');
  await clock.advance(1000);
  return (await c.reply()).lines;
}

test('a failed AUTH is answered after the pause; the third ends the session; failures are counted per address', async () => {
  const clock = new FakeClock();
  const r = await role(clock);
  const c = await greeted(r.socketPath);
  try {
    assert.deepEqual(await guess(c, clock), ['535 5.7.8 Authentication failed']);
    assert.deepEqual(await guess(c, clock), ['535 5.7.8 Authentication failed']);
    assert.deepEqual(await guess(c, clock), ['535 5.7.8 Authentication failed']);
    assert.equal((await c.reply()).lines[0], '421 4.7.0 Too many authentication failures, closing connection');
    await c.closedByPeer();
    await eventually(async () => (await r.stat('smtp.auth.failure', { address: 'local' })) === 3 || undefined, 'the failures counted');
    // no ban configured: the next session may try again, and the right password works
    const next = await greeted(r.socketPath);
    assert.equal((await next.cmd(plain('alice', 'right'))).code, 235);
    next.close();
  } finally {
    c.close();
    await r.stop();
  }
});

test('smtp ban: after N failures within the window the address gets 421 at connect, until the ban ends', async () => {
  const clock = new FakeClock();
  const r = await role(clock, { failures: 4, window: 600, duration: 3600 });
  try {
    const first = await greeted(r.socketPath);
    for (let i = 0; i < 3; i++) await guess(first, clock);
    first.close();
    // failures older than the window are forgotten
    await clock.advance(601_000);
    const second = await greeted(r.socketPath);
    for (let i = 0; i < 3; i++) await guess(second, clock);
    second.close();
    const third = await greeted(r.socketPath);
    await guess(third, clock);
    third.close();
    assert.match(r.logs.join('\n'), /lka banned address=local reason=auth-failures/);
    const banned = await SmtpTestClient.connectPath(r.socketPath);
    assert.equal((await banned.reply()).lines[0], '421 4.7.0 Too many authentication failures from your address, try again later');
    await banned.closedByPeer();
    await clock.advance(3600_000);
    const later = await greeted(r.socketPath);
    assert.equal((await later.cmd(plain('alice', 'right'))).code, 235);
    later.close();
  } finally {
    await r.stop();
  }
});

test('AUTH inside a mail transaction is 503 (RFC 4954 §4), and works once it is over', async () => {
  const clock = new FakeClock();
  const r = await role(clock);
  const c = await greeted(r.socketPath);
  try {
    assert.equal((await c.cmd('MAIL FROM:<a@guesser.test>')).code, 250);
    assert.deepEqual((await c.cmd(plain('alice', 'right'))).lines, ['503 5.5.1 Invalid command: AUTH not permitted during a mail transaction']);
    assert.equal((await c.cmd('RSET')).code, 250);
    assert.equal((await c.cmd(plain('alice', 'right'))).code, 235);
  } finally {
    c.close();
    await r.stop();
  }
});
