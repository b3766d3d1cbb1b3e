/** mbox delivery: From line, >From quoting, dotlock waits/tempfails/stale, flock, no torn appends. */
import { test } from 'node:test';
import { fileBody } from '../../src/queue/body-ref.js';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, readFile, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock } from '../../src/clock.js';
import { ctime, deliverMbox, fromLine, type MboxJob } from '../../src/mda/mbox.js';
import { Deliverer } from '../../src/mda/deliver.js';
import { fileLines } from './helpers.js';
import { action, config, envelope, IS_ROOT, MESSAGE, tempDir, testUser, writeBody } from './helpers.js';

function job(dir: string, over: Partial<MboxJob> = {}): MboxJob {
  return {
    path: join(dir, 'bob'),
    from: 'alice@example.net',
    dotlock: { path: join(dir, 'bob.lock'), waitMs: 5_000, staleMs: 300_000 },
    flockWaitMs: 5_000,
    spoolDir: dir,
    ...over,
  };
}

test('messages are appended with a From line, >From quoting and a blank line', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const body = await writeBody(dir, MESSAGE);
  assert.equal((await deliverMbox(job(dir), fileLines(body), systemClock)).result, 'ok');
  assert.equal((await deliverMbox(job(dir, { from: 'MAILER-DAEMON' }), fileLines(body), systemClock)).result, 'ok');
  const text = await readFile(join(dir, 'bob'), 'utf8');
  const parts = text.split(/^From /m).filter(Boolean);
  assert.equal(parts.length, 2, 'exactly two separator lines: the body line was quoted');
  assert.match(text, /^From alice@example\.net \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n/);
  assert.match(text, /\nFrom MAILER-DAEMON /);
  assert.ok(text.includes('\n>From the start of a line\n'));
  assert.ok(text.includes('\nlast line\n\nFrom MAILER-DAEMON'), 'a blank line ends each message');
  assert.equal((await stat(join(dir, 'bob'))).mode & 0o777, 0o600);
  await assert.rejects(stat(join(dir, 'bob.lock')), 'the dotlock is removed afterwards');
});

test('a held dotlock makes delivery wait, and it proceeds once the lock goes', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const body = await writeBody(dir, MESSAGE);
  const lock = join(dir, 'bob.lock');
  await writeFile(lock, '12345\n');
  let done = false;
  const pending = deliverMbox(job(dir, { dotlock: { path: lock, waitMs: 30_000, staleMs: 300_000 } }), fileLines(body), systemClock)
    .then((r) => { done = true; return r; });
  // a few polling rounds of the waiter pass while we hold the lock
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 60));
  assert.equal(done, false);
  await assert.rejects(stat(join(dir, 'bob')), 'nothing written while the lock is held');
  const { unlink } = await import('node:fs/promises');
  await unlink(lock);
  assert.equal((await pending).result, 'ok');
  assert.ok((await readFile(join(dir, 'bob'), 'utf8')).includes('first line'));
});

test('a dotlock held past the wait is a tempfail; a stale one is broken', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const body = await writeBody(dir, MESSAGE);
  const lock = join(dir, 'bob.lock');
  await writeFile(lock, '1\n');
  const r = await deliverMbox(job(dir, { dotlock: { path: lock, waitMs: 200, staleMs: 300_000 } }), fileLines(body), systemClock);
  assert.equal(r.result, 'tempfail');
  assert.match(r.detail, /locked/);
  await assert.rejects(stat(join(dir, 'bob')));
  const old = new Date(Date.now() - 3_600_000);
  await utimes(lock, old, old);
  const r2 = await deliverMbox(job(dir, { dotlock: { path: lock, waitMs: 200, staleMs: 300_000 } }), fileLines(body), systemClock);
  assert.equal(r2.result, 'ok');
  await assert.rejects(stat(lock));
});

test('a flock(2) held by another program is honoured', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const body = await writeBody(dir, MESSAGE);
  const mbox = join(dir, 'bob');
  await writeFile(mbox, '', { mode: 0o600 });
  // another mail program holds the kernel lock until we close its stdin
  const holder = spawn('flock', ['-x', mbox, '/bin/sh', '-c', 'echo held; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'ignore'] });
  t.after(() => { holder.kill(); });
  await new Promise((r) => holder.stdout!.once('data', r));
  const r = await deliverMbox(job(dir, { flockWaitMs: 1_000 }), fileLines(body), systemClock);
  assert.equal(r.result, 'tempfail');
  assert.equal(await readFile(mbox, 'utf8'), '');
  holder.stdin!.end();
  await new Promise((r) => holder.once('exit', r));
  assert.equal((await deliverMbox(job(dir), fileLines(body), systemClock)).result, 'ok');
});

test('symlinked mailboxes and world-writable spools are refused', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const body = await writeBody(dir, MESSAGE);
  const victim = await writeBody(dir, 'precious\n', 'victim');
  await symlink(victim, join(dir, 'bob'));
  const r = await deliverMbox(job(dir), fileLines(body), systemClock);
  assert.equal(r.result, 'tempfail');
  assert.equal(await readFile(victim, 'utf8'), 'precious\n');
  const spool = join(dir, 'spool');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(spool);
  await chmod(spool, 0o777);
  const r2 = await deliverMbox(job(spool), fileLines(body), systemClock);
  assert.equal(r2.result, 'tempfail');
  assert.match(r2.detail, /world-writable/);
});

test('a body that cannot be read leaves the mailbox as it was', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  await writeFile(join(dir, 'bob'), 'From x Thu Jan  1 00:00:00 2026\nold\n\n', { mode: 0o600 });
  async function* broken(): AsyncGenerator<Buffer> {
    yield Buffer.from('Subject: partial');
    throw Object.assign(new Error('read failed'), { code: 'EIO' });
  }
  const r = await deliverMbox(job(dir), broken(), systemClock);
  assert.equal(r.result, 'tempfail');
  assert.equal(await readFile(join(dir, 'bob'), 'utf8'), 'From x Thu Jan  1 00:00:00 2026\nold\n\n');
});

test('ctime and the From line match mail.local', () => {
  const ms = new Date(2026, 0, 5, 7, 8, 9).getTime();
  assert.equal(ctime(ms), 'Mon Jan  5 07:08:09 2026');
  assert.equal(fromLine('a b\n@x', ms).toString(), 'From a_b_@x Mon Jan  5 07:08:09 2026');
});

test('through the deliverer: the mbox method writes <mboxDir>/<user>, owned by the user', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const user = testUser(join(dir, 'home'));
  const body = await writeBody(dir, MESSAGE);
  const d = new Deliverer({ config: config([action({ kind: 'mbox' })]), clock: systemClock, serverName: 'mx.test' }, { mboxDir: dir });
  assert.deepEqual(await d.deliver(envelope({ user, sender: '' }), await fileBody(body)), { result: 'ok', detail: 'Delivered' });
  const box = join(dir, user.username);
  const text = await readFile(box, 'utf8');
  assert.match(text, /^From MAILER-DAEMON .*\nDelivered-To: Bob@Example\.org\nFrom: Alice/);
  assert.ok(!text.includes('Return-Path'), 'no Return-Path for the null sender');
  assert.equal((await stat(box)).uid, IS_ROOT ? user.uid : process.getuid!());
});
