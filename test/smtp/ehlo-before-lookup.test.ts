/**
 * The banner goes out while the lka looks the client up (no filter, no `hostnames` table); EHLO
 * and HELO are then answered without waiting for the lookup, since they read nothing it gives.
 * Every other command waits for it, and a refused EHLO is logged only after the `connected` line.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startSmtpRole } from '../harness/smtp-role.js';
import { SmtpTestClient } from '../harness/net.js';

/** A session past its banner, with an lka whose answer to the connect waits until `release()`. */
async function greetedWhileLookingUp(t: TestContext) {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const connect = async () => {
    await released;
    return { fcrdns: 'pass' as const, rdns: 'client.example' };
  };
  const smtp = await startSmtpRole({ listeners: [{}], lka: { 'smtp.session.connect': connect } });
  t.after(() => smtp.stop());
  const c = await SmtpTestClient.connect(smtp.ports[0]!);
  t.after(() => c.close());
  assert.equal((await c.reply()).code, 220);
  return { smtp, c, release };
}

test('EHLO is answered while the lookup runs; MAIL waits for it', async (t) => {
  const { smtp, c, release } = await greetedWhileLookingUp(t);
  assert.equal((await c.cmd('EHLO client.example')).code, 250);
  c.write('MAIL FROM:<a@client.example>\r\n');
  await assert.rejects(c.reply(300), 'no reply to MAIL before the lookup is in');
  release();
  assert.equal((await c.reply()).code, 250);
  assert.ok(smtp.logs.some((l) => /connected .*host=client\.example/.test(l)), smtp.logs.join('\n'));
});

test('a refused EHLO waits for the lookup, so the log says `connected` first', async (t) => {
  const { smtp, c, release } = await greetedWhileLookingUp(t);
  c.write('EHLO\r\n');
  await assert.rejects(c.reply(300), 'no reply to a refused EHLO before the lookup is in');
  release();
  assert.equal((await c.reply()).code, 501);
  const connected = smtp.logs.findIndex((l) => / connected /.test(l));
  const failed = smtp.logs.findIndex((l) => / failed-command /.test(l));
  assert.ok(connected >= 0 && failed > connected, smtp.logs.join('\n'));
});
