/**
 * Issue 13: an error that escapes a session's code ends that session — 421, a `session-error`
 * log line — and nothing else: the process, the other sessions and the next client carry on.
 * The error is provoked the way a broken peer would: the lka answers a filter phase with
 * nothing at all, which the session's code does not expect.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startSmtpRole, type SmtpRole } from '../harness/smtp-role.js';
import { SmtpTestClient } from '../harness/net.js';

let role: SmtpRole;

before(async () => {
  role = await startSmtpRole({
    listeners: [{ filter: 'f' }],
    lka: {
      // garbage for two phases: one answered while commands are drained, one before the banner
      // (the connect phase only for clients from 127.0.0.9)
      'smtp.filter.phase': ((req: { phase: string; param: string; facts: { clientAddress: string } }) =>
        req.phase === 'mail-from' || (req.phase === 'connect' && req.facts.clientAddress === '127.0.0.9') ? null : { kind: 'proceed', junk: false, param: req.param, dataLine: false }) as never,
    },
  });
});
after(async () => {
  await role.stop();
});

test('a bug while a command is handled: that session gets 421 and ends, the next client is served', async () => {
  const other = await SmtpTestClient.connect(role.ports[0]!);
  const c = await SmtpTestClient.connect(role.ports[0]!);
  try {
    assert.equal((await other.reply()).code, 220);
    assert.equal((await c.reply()).code, 220);
    assert.equal((await c.cmd('EHLO boundary.test')).code, 250);
    assert.equal((await c.cmd('MAIL FROM:<a@boundary.test>')).lines[0], '421 4.3.0 Internal error, closing connection');
    await c.closedByPeer();
    // the session open beside it goes on
    assert.equal((await other.cmd('NOOP')).code, 250);
  } finally {
    c.close();
    other.close();
  }
  assert.match(role.logs.join('\n'), /smtp session-error error="TypeError: /);
  assert.match(role.logs.join('\n'), /smtp disconnected reason=internal-error/);
  assert.deepEqual(role.escaped, []);
  const next = await SmtpTestClient.connect(role.ports[0]!);
  try {
    assert.equal((await next.reply()).code, 220);
    assert.equal((await next.cmd('EHLO next.test')).code, 250);
  } finally {
    next.close();
  }
});

test('a bug before the banner: 421 instead of 220, and the process carries on', async () => {
  const c = await SmtpTestClient.connect(role.ports[0]!, '127.0.0.1', '127.0.0.9');
  try {
    assert.equal((await c.reply()).lines[0], '421 4.3.0 Internal error, closing connection');
    await c.closedByPeer();
  } finally {
    c.close();
  }
  assert.deepEqual(role.escaped, []);
});
