/**
 * Issue 5's end-to-end check: mail to an alias, a virtual user, a user with a `.forward` and an
 * `|command` each lands where aliases(5), table(5) and forward(5) say, through a real daemon.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, chown, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { eventually, IS_ROOT, sendMessage, startMailHost, type MailHost } from '../harness/mail.js';

let host: MailHost;

before(async () => {
  host = await startMailHost({
    users: ['alice', 'bob', 'carol', 'nobody'],
    aliases: ['postmaster: alice', 'team: alice, bob', 'pipe: "|/bin/sh -c \'cat > %DIR%/maildir/pipe-out\'"', 'loop1: loop2', 'loop2: loop1'].join('\n') + '\n',
    extra: [
      'table vusers { "info@virtual.test" = bob, "@virtual.test" = carol }',
      'table vdomains { virtual.test }',
      'action "virtual" maildir "%DIR%/maildir/%{user.username:lowercase}" virtual <vusers> userbase <users>',
    ].join('\n'),
    rules: [
      'match from any for domain <vdomains> action "virtual"',
      'match from any for domain <domains> action "local"',
    ].join('\n'),
  });
  // carol forwards to bob and keeps a copy (a user naming themselves in .forward gets it delivered)
  const forward = join(host.dir, 'home', 'carol', '.forward');
  await writeFile(forward, 'bob\ncarol\n');
  await chmod(forward, 0o644);
  if (IS_ROOT) await chown(forward, 65534, 65534);
});
after(async () => {
  await host.stop();
});

const withSubject = (subject: string) => async (user: string) =>
  (await host.maildir(user)).filter((m) => m.includes(`Subject: ${subject}`));

test('an alias expands to its user', async () => {
  const r = await sendMessage(host.port, 'sender@client.test', ['postmaster@example.test'], 'Subject: to-postmaster\r\n\r\nhi');
  assert.equal(r.at(-1)!.code, 250, JSON.stringify(r));
  const got = await eventually(async () => (await withSubject('to-postmaster')('alice')).length === 1 || undefined, 'alias delivery');
  assert.ok(got);
});

test('a list alias reaches every member, once', async () => {
  const r = await sendMessage(host.port, 'sender@client.test', ['team@example.test'], 'Subject: to-team\r\n\r\nhi');
  assert.equal(r.at(-1)!.code, 250);
  await eventually(async () => (await withSubject('to-team')('alice')).length === 1 && (await withSubject('to-team')('bob')).length === 1, 'list delivery');
});

test('virtual users: an exact key, then the @domain catch-all', async () => {
  assert.equal((await sendMessage(host.port, 's@client.test', ['info@virtual.test'], 'Subject: v-info\r\n\r\nhi')).at(-1)!.code, 250);
  assert.equal((await sendMessage(host.port, 's@client.test', ['anything@virtual.test'], 'Subject: v-any\r\n\r\nhi')).at(-1)!.code, 250);
  await eventually(async () => (await withSubject('v-info')('bob')).length === 1, 'virtual exact');
  // carol's .forward applies to the catch-all too: bob gets a copy, carol keeps hers
  await eventually(async () => (await withSubject('v-any')('carol')).length === 1 && (await withSubject('v-any')('bob')).length === 1, 'virtual catch-all');
});

test('a user with a .forward: forwarded, and kept when the file names the user', async () => {
  assert.equal((await sendMessage(host.port, 's@client.test', ['carol@example.test'], 'Subject: fwd\r\n\r\nhi')).at(-1)!.code, 250);
  await eventually(async () => (await withSubject('fwd')('bob')).length === 1 && (await withSubject('fwd')('carol')).length === 1, 'forward');
});

test('an |command alias gets the message on stdin', async () => {
  assert.equal((await sendMessage(host.port, 's@client.test', ['pipe@example.test'], 'Subject: piped\r\n\r\nhello pipe')).at(-1)!.code, 250);
  // the file exists from the moment the command starts: wait for the end of the message in it
  const out = await eventually(async () => (await readFile(join(host.dir, 'maildir', 'pipe-out'), 'utf8').catch(() => '')).includes('hello pipe') ? readFile(join(host.dir, 'maildir', 'pipe-out'), 'utf8') : undefined, 'command output');
  assert.match(out, /Subject: piped/);
  assert.match(out, /hello pipe/);
});

test('unknown users and alias loops are refused at RCPT time, not bounced later', async () => {
  const unknown = await sendMessage(host.port, 's@client.test', ['nosuchuser@example.test'], 'x');
  assert.ok(unknown.some((r) => /^550 5\.1\.1 /.test(r.lines[0]!)), JSON.stringify(unknown));
  const loop = await sendMessage(host.port, 's@client.test', ['loop1@example.test'], 'x');
  assert.ok(loop.some((r) => r.code >= 500 && r.code < 600 && r.lines[0]!.startsWith('5') && r !== loop[0]), JSON.stringify(loop));
});
