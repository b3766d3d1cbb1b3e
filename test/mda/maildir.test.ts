/** Maildir delivery: tmp/ → new/, headers, junk into .Junk, extension folders, unique names. */
import { test } from 'node:test';
import { fileBody } from '../../src/queue/body-ref.js';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock } from '../../src/clock.js';
import { deliverMaildir, uniqueName } from '../../src/mda/maildir.js';
import { Deliverer } from '../../src/mda/deliver.js';
import { fileLines } from './helpers.js';
import { action, config, envelope, IS_ROOT, MESSAGE, ownedDir, tempDir, testUser, writeBody } from './helpers.js';

async function files(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

test('a message lands whole in new/, tmp/ is left empty, line endings become LF', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const body = await writeBody(dir, MESSAGE);
  const md = join(dir, 'deep', 'Maildir');
  const r = await deliverMaildir({ path: md, junk: false, envelopeJunk: false }, fileLines(body));
  assert.deepEqual(r, { result: 'ok', detail: 'Delivered' });
  const fresh = await files(join(md, 'new'));
  assert.equal(fresh.length, 1);
  assert.deepEqual(await files(join(md, 'tmp')), []);
  assert.deepEqual(await files(join(md, 'cur')), []);
  const text = await readFile(join(md, 'new', fresh[0]!), 'utf8');
  assert.equal(text, MESSAGE.replace(/\r\n/g, '\n'));
  assert.equal((await stat(join(md, 'new', fresh[0]!))).mode & 0o777, 0o600);
  assert.equal((await stat(md)).mode & 0o777, 0o700);
});

test('with junk, X-Spam: yes in the header goes to .Junk; the same line in the body does not', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const md = join(dir, 'Maildir');
  const spam = await writeBody(dir, 'Subject: buy\nX-Spam: YES\n\nbody\n', 'spam');
  const ham = await writeBody(dir, 'Subject: hi\n\nX-Spam: yes\n', 'ham');
  const flagged = await writeBody(dir, 'Subject: hi\n\nplain\n', 'flagged');
  assert.equal((await deliverMaildir({ path: md, junk: true, envelopeJunk: false }, fileLines(spam))).result, 'ok');
  assert.equal((await deliverMaildir({ path: md, junk: true, envelopeJunk: false }, fileLines(ham))).result, 'ok');
  assert.equal((await deliverMaildir({ path: md, junk: true, envelopeJunk: true }, fileLines(flagged))).result, 'ok');
  assert.equal((await files(join(md, '.Junk', 'new'))).length, 2);
  assert.equal((await files(join(md, 'new'))).length, 1);
  // without the junk option spam stays in the inbox and no .Junk is made
  const md2 = join(dir, 'Maildir2');
  await deliverMaildir({ path: md2, junk: false, envelopeJunk: true }, fileLines(spam));
  assert.equal((await files(join(md2, 'new'))).length, 1);
  await assert.rejects(stat(join(md2, '.Junk')));
});

test('an extension delivers into .EXT only when that folder exists', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const md = join(dir, 'Maildir');
  const body = await writeBody(dir, MESSAGE);
  await mkdir(join(md, '.lists'), { recursive: true });
  await deliverMaildir({ path: md, junk: false, envelopeJunk: false, extension: 'lists' }, fileLines(body));
  await deliverMaildir({ path: md, junk: false, envelopeJunk: false, extension: 'nosuch' }, fileLines(body));
  await deliverMaildir({ path: md, junk: false, envelopeJunk: false, extension: '../..' }, fileLines(body));
  assert.equal((await files(join(md, '.lists', 'new'))).length, 1);
  assert.equal((await files(join(md, 'new'))).length, 2);
});

test('concurrent deliveries get distinct names and none is lost', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const md = join(dir, 'Maildir');
  const body = await writeBody(dir, MESSAGE);
  const results = await Promise.all(
    Array.from({ length: 40 }, () => deliverMaildir({ path: md, junk: false, envelopeJunk: false }, fileLines(body))),
  );
  assert.ok(results.every((r) => r.result === 'ok'));
  assert.equal(new Set(await files(join(md, 'new'))).size, 40);
  const names = new Set(Array.from({ length: 1000 }, () => uniqueName(0, 'host/a:b')));
  assert.equal(names.size, 1000);
  assert.ok([...names].every((n) => !n.includes('/') && n.endsWith('host\\057a\\072b')));
});

test('a relative path is a permanent failure; an unwritable place a temporary one', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const body = await writeBody(dir, MESSAGE);
  assert.equal((await deliverMaildir({ path: 'Maildir', junk: false, envelopeJunk: false }, fileLines(body))).result, 'permfail');
  const blocked = await writeBody(dir, 'not a dir', 'file');
  const r = await deliverMaildir({ path: join(blocked, 'Maildir'), junk: false, envelopeJunk: false }, fileLines(body));
  assert.equal(r.result, 'tempfail');
});

test('through the deliverer: default ~/Maildir, Return-Path and Delivered-To, owned by the user', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const home = join(dir, 'home');
  const user = testUser(home);
  await ownedDir(home, user);
  const body = await writeBody(dir, MESSAGE);
  const d = new Deliverer({ config: config([action({ kind: 'maildir', junk: false })]), clock: systemClock, serverName: 'mx.test' });
  const r = await d.deliver(envelope({ user }), await fileBody(body));
  assert.deepEqual(r, { result: 'ok', detail: 'Delivered' });
  const newDir = join(home, 'Maildir', 'new');
  const [name] = await files(newDir);
  const text = await readFile(join(newDir, name!), 'utf8');
  assert.ok(text.startsWith('Return-Path: <alice@example.net>\nDelivered-To: Bob@Example.org\nFrom: Alice'), text);
  const st = await stat(join(newDir, name!));
  assert.equal(st.uid, user.uid, IS_ROOT ? 'written by the child as the user' : 'written as ourselves');
});

test('through the deliverer: a maildir path with formats, and a loop is refused', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const home = join(dir, 'home');
  const user = testUser(home);
  await ownedDir(home, user);
  const act = action({ kind: 'maildir', path: '~/mail/%{rcpt.domain:lowercase}', junk: false });
  const d = new Deliverer({ config: config([act]), clock: systemClock, serverName: 'mx.test' });
  const body = await writeBody(dir, MESSAGE);
  assert.equal((await d.deliver(envelope({ user }), await fileBody(body))).result, 'ok');
  assert.equal((await files(join(home, 'mail', 'example.org', 'new'))).length, 1);
  const looped = await writeBody(dir, 'Delivered-To: BOB@example.org\nSubject: x\n\nbody\n', 'loop');
  const r = await d.deliver(envelope({ user }), await fileBody(looped));
  assert.deepEqual(r, { result: 'loop', enhanced: '5.4.6', detail: 'Loop detected' });
});
