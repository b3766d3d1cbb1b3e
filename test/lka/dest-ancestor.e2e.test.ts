/**
 * Issue 15 item 1: after expansion an envelope's dest is its nearest *address* ancestor, as
 * OpenSMTPD's lka_submit() sets it (`lka_find_ancestor(xn, EXPAND_ADDRESS)`), and the same user
 * reached through two addresses stays two deliveries (expand_cmp() tells nodes apart by their
 * address ancestor). Every address here maps to one `vmail` user, the usual virtual-domain setup.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, chown, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { eventually, IS_ROOT, sendMessage, startMailHost, type MailHost } from '../harness/mail.js';
import { startLmtpServer, type Recorded } from '../mda/lmtp-server.js';

let host: MailHost;
let lmtp: Awaited<ReturnType<typeof startLmtpServer>>;

before(async () => {
  lmtp = await startLmtpServer({}, { host: '127.0.0.1', port: 0 });
  host = await startMailHost({
    users: ['alice', 'carol', 'vmail'],
    extra: [
      'table vdomains { virt.test, lmtp.test }',
      'table vmap { "ann@virt.test" = vmail, "ben@virt.test" = vmail, "list@virt.test" = "ann@virt.test, ben@virt.test", "ann@lmtp.test" = vmail, "ben@lmtp.test" = vmail }',
      'action "vmaildir" maildir "%DIR%/maildir/%{dest.domain}/%{dest.user}" virtual <vmap> userbase <users>',
      `action "vlmtp" lmtp "127.0.0.1:${lmtp.port}" rcpt-to virtual <vmap> userbase <users>`,
    ].join('\n'),
    rules: [
      'match from any for domain "virt.test" action "vmaildir"',
      'match from any for domain "lmtp.test" action "vlmtp"',
      'match from any for domain <domains> action "local"',
    ].join('\n'),
  });
  // carol forwards everything to a virtual address
  const forward = join(host.dir, 'home', 'carol', '.forward');
  await writeFile(forward, 'ann@virt.test\n');
  await chmod(forward, 0o644);
  if (IS_ROOT) await chown(forward, 65534, 65534);
});
after(async () => {
  await host?.stop();
  await lmtp?.close();
});

const inBox = (box: string, subject: string) => async () =>
  (await host.maildir(box)).filter((m) => m.includes(`Subject: ${subject}`)).length;

test('virtual maildir by %{dest.domain}/%{dest.user}: each address its own mailbox though all map to vmail (lka_submit)', async () => {
  const r = await sendMessage(host.port, 's@client.test', ['ann@virt.test', 'ben@virt.test'], 'Subject: vm\r\n\r\nhi');
  assert.equal(r.at(-1)!.code, 250, JSON.stringify(r));
  await eventually(async () => (await inBox('virt.test/ann', 'vm')()) === 1 && (await inBox('virt.test/ben', 'vm')()) === 1, 'one copy in each mailbox');
  assert.equal(await inBox('virt.test/vmail', 'vm')(), 0, 'nothing in the shared user\'s name');
});

test('a list whose members map to one user: one delivery per member address (expand_cmp)', async () => {
  const r = await sendMessage(host.port, 's@client.test', ['list@virt.test'], 'Subject: lst\r\n\r\nhi');
  assert.equal(r.at(-1)!.code, 250, JSON.stringify(r));
  await eventually(async () => (await inBox('virt.test/ann', 'lst')()) === 1 && (await inBox('virt.test/ben', 'lst')()) === 1, 'both members');
});

test('.forward to a virtual address keeps that address as dest', async () => {
  const r = await sendMessage(host.port, 's@client.test', ['carol@example.test'], 'Subject: fwv\r\n\r\nhi');
  assert.equal(r.at(-1)!.code, 250, JSON.stringify(r));
  await eventually(inBox('virt.test/ann', 'fwv'), 'forwarded to ann');
});

test('lmtp rcpt-to with virtual: the LMTP server gets the original addresses, not vmail', async () => {
  const r = await sendMessage(host.port, 's@client.test', ['ann@lmtp.test', 'ben@lmtp.test'], 'Subject: lm\r\n\r\nhi');
  assert.equal(r.at(-1)!.code, 250, JSON.stringify(r));
  const rcpts = (rec: Recorded) => rec.commands.filter((c) => c.startsWith('RCPT TO:')).sort();
  await eventually(async () => rcpts(lmtp.recorded).length >= 2, 'two LMTP deliveries');
  assert.deepEqual(rcpts(lmtp.recorded), ['RCPT TO:<ann@lmtp.test>', 'RCPT TO:<ben@lmtp.test>']);
});
