/** Planning a delivery: which method, which user, the account of `user NAME`, and refusals. */
import { test } from 'node:test';
import { fileBody } from '../../src/queue/body-ref.js';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { systemClock } from '../../src/clock.js';
import { Deliverer } from '../../src/mda/deliver.js';
import { getentPasswd, parsePasswdLine } from '../../src/mda/passwd.js';
import { extensionOf, planDelivery, type PlanSettings } from '../../src/mda/plan.js';
import { action, config, envelope, MESSAGE, ownedDir, tempDir, testUser, writeBody } from './helpers.js';

const settings: PlanSettings = { mboxDir: '/var/mail', lockWaitMs: 1000, staleLockMs: 1000, lmtpTimeoutMs: 1000, serverName: 'mx' };
const bob = { username: 'bob', uid: 1001, gid: 1001, directory: '/home/bob' };

test('each method becomes its job, with OpenSMTPD\'s defaults', () => {
  const plan = (method: Parameters<typeof action>[0], over = {}) =>
    planDelivery({ envelope: envelope({ user: bob, ...over }), action: action(method), config: config([]), user: bob, account: bob, settings });
  assert.deepEqual(plan({ kind: 'maildir', junk: true }), {
    kind: 'job', inProcess: false, job: { kind: 'maildir', maildir: { path: '/home/bob/Maildir', junk: true, envelopeJunk: false } },
  });
  const mbox = plan({ kind: 'mbox' });
  assert.ok(mbox.kind === 'job' && mbox.inProcess && mbox.job.kind === 'mbox');
  assert.equal(mbox.kind === 'job' && mbox.job.kind === 'mbox' && mbox.job.mbox.dotlock?.path, '/var/mail/bob.lock');
  const lmtp = plan({ kind: 'lmtp', destination: '/run/lmtp', rcptTo: false });
  assert.deepEqual(lmtp.kind === 'job' && lmtp.job.kind === 'lmtp' && lmtp.job.lmtp.rcpts, ['bob']);
  assert.equal(plan({ kind: 'relay' }).kind, 'fail');
  assert.equal(plan({ kind: 'mbox' }, { user: { ...bob, username: '../etc' } }).kind, 'job', 'the recipient account decides, not the envelope copy');
  const bad = planDelivery({ envelope: envelope(), action: action({ kind: 'mbox' }), config: config([]), user: { ...bob, username: '../x' }, account: bob, settings });
  assert.equal(bad.kind, 'fail');
  const root = { ...bob, uid: 0 };
  assert.equal(planDelivery({ envelope: envelope(), action: action({ kind: 'mbox' }), config: config([]), user: root, account: root, settings }).kind, 'job', 'mbox may deliver to root');
  assert.equal(planDelivery({ envelope: envelope({ mdaTarget: { kind: 'file', value: '/tmp/x' } }), action: action({ kind: 'mbox' }), config: config([]), user: root, account: root, settings }).kind, 'fail');
});

test('the extension is the expansion\'s mda_subaddress only, never the +tag of the dest (mda_unpriv EXTENSION)', () => {
  assert.equal(extensionOf(envelope({ rcpt: 'bob+lists@x' })), undefined, 'a virtual address mapped to a user keeps its tag in dest only');
  assert.equal(extensionOf(envelope({ rcpt: 'bob@x', subaddress: 'given' })), 'given');
  assert.equal(extensionOf(envelope({ rcpt: 'bob@x' })), undefined);
});

test('passwd lines and getent', async () => {
  assert.deepEqual(parsePasswdLine('bob:x:1001:100:Bob:/home/bob:/bin/sh'), { username: 'bob', uid: 1001, gid: 100, directory: '/home/bob' });
  assert.equal(parsePasswdLine('broken:x::1'), null);
  const root = await getentPasswd('root');
  assert.equal(root?.uid, 0);
  assert.equal(await getentPasswd('no-such-user-tsmtpd'), null);
  assert.equal(await getentPasswd('-s'), null, 'never an option for getent');
});

test('action user NAME: the delivery runs as that account, HOME is its home', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const home = join(dir, 'vmail');
  const vmail = { ...testUser(home), username: 'vmail' };
  await ownedDir(home, vmail);
  const cfg = config([action({ kind: 'mda', command: 'cat > "$HOME/got"; echo "$USER" >> "$HOME/got"' }, { user: 'vmail' })]);
  const lookups: string[] = [];
  const d = new Deliverer({ config: cfg, clock: systemClock, serverName: 'mx' }, {
    passwd: async (name) => { lookups.push(name); return name === 'vmail' ? vmail : null; },
  });
  const body = await writeBody(dir, MESSAGE);
  const r = await d.deliver(envelope({ user: { ...bob, directory: '/nonexistent' } }), await fileBody(body));
  assert.deepEqual(r, { result: 'ok', detail: 'Delivered' });
  assert.deepEqual(lookups, ['vmail']);
  assert.match(await readFile(join(home, 'got'), 'utf8'), /\nbob\n$/, 'USER stays the recipient');
  const missing = new Deliverer({ config: config([action({ kind: 'mda', command: 'true' }, { user: 'ghost' })]), clock: systemClock, serverName: 'mx' }, { passwd: async () => null });
  assert.deepEqual(await missing.deliver(envelope({ user: bob }), await fileBody(body)), { result: 'permfail', enhanced: '5.3.0', detail: "delivery user 'ghost' does not exist" });
  const failing = new Deliverer({ config: config([action({ kind: 'mda', command: 'true' }, { user: 'x' })]), clock: systemClock, serverName: 'mx' }, { passwd: async () => { throw new Error('nss down'); } });
  assert.equal((await failing.deliver(envelope({ user: bob }), await fileBody(body))).result, 'tempfail');
});
