/** mda commands and alias targets: stdin, environment, exit codes, signals, timeout, wrapper, root. */
import { test } from 'node:test';
import { fileBody } from '../../src/queue/body-ref.js';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock } from '../../src/clock.js';
import type { Action } from '../../src/config/types.js';
import { Deliverer, type MdaOptions } from '../../src/mda/deliver.js';
import { mdaEnv, outcome } from '../../src/mda/command.js';
import type { Envelope } from '../../src/queue/envelope.js';
import { action, config, envelope, MESSAGE, ownedDir, tempDir, testUser, writeBody } from './helpers.js';

async function setup(t: { after: (fn: () => Promise<void>) => void }, act: Action, opts: MdaOptions = {}, wrappers: [string, string][] = []) {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const home = join(dir, 'home');
  const user = testUser(home);
  await ownedDir(home, user);
  const cfg = config([act], {
    mdaWrappers: new Map(wrappers.map(([name, command]) => [name, { name, command, where: { file: 't', line: 1 } }])),
  });
  const d = new Deliverer({ config: cfg, clock: systemClock, serverName: 'mx.test' }, opts);
  const body = await writeBody(dir, MESSAGE);
  const run = async (over: Partial<Envelope> = {}) => d.deliver(envelope({ user, ...over }), await fileBody(body));
  return { dir, home, user, run };
}

test('the command gets the message with headers on stdin and exit 0 is delivered', async (t) => {
  const s = await setup(t, action({ kind: 'mda', command: 'cat > "$HOME/out"' }));
  assert.deepEqual(await s.run(), { result: 'ok', detail: 'Delivered' });
  const got = await readFile(join(s.home, 'out'), 'utf8');
  assert.equal(got, 'Return-Path: <alice@example.net>\nDelivered-To: Bob@Example.org\n' + MESSAGE.replace(/\r\n/g, '\n'));
});

test('the environment is OpenSMTPD\'s and nothing of the daemon leaks', async (t) => {
  process.env['TSMTPD_SECRET_TEST'] = 'leak';
  t.after(() => { delete process.env['TSMTPD_SECRET_TEST']; });
  const s = await setup(t, action({ kind: 'mda', command: 'env > "$HOME/env"; pwd > "$HOME/pwd"' }));
  assert.equal((await s.run({ rcpt: 'bob+lists@example.org', origRcpt: 'Bob+Lists@Example.org', subaddress: 'lists' })).result, 'ok');
  const env = Object.fromEntries((await readFile(join(s.home, 'env'), 'utf8')).trim().split('\n').map((l) => {
    const i = l.indexOf('=');
    return [l.slice(0, i), l.slice(i + 1)];
  }));
  assert.equal(env['HOME'], s.home);
  assert.equal(env['USER'], s.user.username);
  assert.equal(env['LOGNAME'], s.user.username);
  assert.equal(env['SHELL'], '/bin/sh');
  assert.equal(env['PATH'], '/usr/bin:/bin');
  assert.equal(env['SENDER'], 'alice@example.net');
  assert.equal(env['RECIPIENT'], 'bob+lists@example.org');
  assert.equal(env['ORIGINAL_RECIPIENT'], 'Bob+Lists@Example.org');
  assert.equal(env['LOCAL'], 'Bob+Lists');
  assert.equal(env['DOMAIN'], 'Example.org');
  assert.equal(env['EXTENSION'], 'lists');
  assert.equal(env['TSMTPD_SECRET_TEST'], undefined);
  assert.equal((await readFile(join(s.home, 'pwd'), 'utf8')).trim(), s.home, 'runs in the home directory');
  assert.equal(mdaEnv({ sender: '', rcpt: 'a@b', dest: 'a@b', username: 'a', home: '/' })['SENDER'], '');
});

test('exit codes: 75 and 71 retry, others bounce, with the last output line as the error', async (t) => {
  const s = await setup(t, action({ kind: 'mda', command: 'cat >/dev/null; echo "first"; echo "mailbox over quota" >&2; exit ${CODE:-75}' }));
  const r = await s.run();
  assert.equal(r.result, 'tempfail');
  assert.equal('enhanced' in r && r.enhanced, '4.3.0');
  assert.equal(r.detail, 'temporary failure: "mailbox over quota"');
  const s2 = await setup(t, action({ kind: 'mda', command: 'cat >/dev/null; echo "no such user"; exit 67' }));
  assert.deepEqual(await s2.run(), { result: 'permfail', enhanced: '5.3.0', detail: 'user unknown: "no such user"' });
  const s3 = await setup(t, action({ kind: 'mda', command: 'cat >/dev/null; exit 71' }));
  assert.deepEqual(await s3.run(), { result: 'tempfail', enhanced: '4.3.0', detail: 'system resource problem: exited abnormally' });
  const s4 = await setup(t, action({ kind: 'mda', command: 'cat >/dev/null; exit 1' }));
  assert.equal((await s4.run()).result, 'permfail');
});

test('death by a signal retries; so does a command that outlives the time limit', async (t) => {
  const s = await setup(t, action({ kind: 'mda', command: 'cat >/dev/null; kill -9 $$' }));
  const r = await s.run();
  assert.equal(r.result, 'tempfail');
  assert.match(r.detail, /terminated; signal SIGKILL/);
  const s2 = await setup(t, action({ kind: 'mda', command: 'sleep 30 & wait' }), { timeoutMs: 300 });
  assert.deepEqual(await s2.run(), { result: 'tempfail', enhanced: '4.3.0', detail: 'terminated; timeout' });
});

test('a command may exit 0 without reading a large message (it chose to discard it)', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const home = join(dir, 'home');
  const user = testUser(home);
  await ownedDir(home, user);
  const d = new Deliverer({ config: config([action({ kind: 'mda', command: 'exit 0' })]), clock: systemClock, serverName: 'x' });
  const big = await writeBody(dir, 'Subject: big\n\n' + 'x'.repeat(100) + '\n'.repeat(1) + ('y'.repeat(99) + '\n').repeat(20_000));
  const r = await d.deliver(envelope({ user }), await fileBody(big));
  assert.deepEqual(r, { result: 'ok', detail: 'Delivered' });
});

test('a wrapper runs with %{mda} as the expanded command', async (t) => {
  const s = await setup(t,
    action({ kind: 'mda', command: 'cat > "$HOME/%{dest.user}.out"' }, { wrapper: 'w' }), {},
    [['w', 'echo wrapped > %{user.directory}/wrapper.out && %{mda}']]);
  assert.equal((await s.run()).result, 'ok');
  assert.equal(await readFile(join(s.home, 'wrapper.out'), 'utf8'), 'wrapped\n');
  assert.match(await readFile(join(s.home, 'bob.out'), 'utf8'), /Subject: hello/);
  const missing = await setup(t, action({ kind: 'mda', command: 'true' }, { wrapper: 'nope' }));
  assert.deepEqual(await missing.run(), { result: 'permfail', enhanced: '5.3.0', detail: 'could not find wrapper nope' });
});

test('addresses cannot inject shell syntax into the command line', async (t) => {
  const s = await setup(t, action({ kind: 'mda', command: 'cat > "$HOME/in-%{sender.user}"' }));
  assert.equal((await s.run({ sender: 'x$(touch${IFS}pwned)`id`@evil.example' })).result, 'ok');
  const { readdir } = await import('node:fs/promises');
  const names = await readdir(s.home);
  assert.ok(!names.includes('pwned') && !names.some((n) => n.includes('$')), names.join(','));
});

test('alias targets: |command runs, /file gets an mbox append', async (t) => {
  const s = await setup(t, action({ kind: 'maildir', junk: false }));
  const out = join(s.home, 'piped');
  assert.equal((await s.run({ mdaTarget: { kind: 'command', value: `|cat > ${out}` } })).result, 'ok');
  assert.match(await readFile(out, 'utf8'), /^Return-Path: <alice@example\.net>\n/);
  const file = join(s.home, 'archive');
  assert.equal((await s.run({ mdaTarget: { kind: 'file', value: file } })).result, 'ok');
  assert.equal((await s.run({ mdaTarget: { kind: 'file', value: file }, sender: '' })).result, 'ok');
  const text = await readFile(file, 'utf8');
  assert.match(text, /^From alice@example\.net /);
  assert.match(text, /\nFrom MAILER-DAEMON /);
  assert.ok(text.includes('\n>From the start of a line\n'));
});

test('uid 0 is refused for every method but mbox', async (t) => {
  const s = await setup(t, action({ kind: 'mda', command: 'cat > /dev/null' }));
  const root = { username: 'root', uid: 0, gid: 0, directory: '/root' };
  assert.deepEqual(await s.run({ user: root }), { result: 'permfail', enhanced: '5.3.0', detail: 'MDA not allowed to deliver to: root' });
});

test('outcome() reads exit statuses as OpenSMTPD does', () => {
  assert.equal(outcome(0, null, false, null).result, 'ok');
  assert.equal(outcome(75, null, false, null).result, 'tempfail');
  assert.equal(outcome(64, null, false, null).result, 'permfail');
  assert.equal(outcome(null, 'SIGTERM', false, null).result, 'tempfail');
  assert.equal(outcome(0, null, true, null).result, 'tempfail', 'killed for the time limit');
});
