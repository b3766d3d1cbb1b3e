/** LMTP delivery against a scripted server (TCP and UNIX socket) and Dovecot's real lmtp when installed. */
import { test } from 'node:test';
import { fileBody } from '../../src/queue/body-ref.js';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { systemClock } from '../../src/clock.js';
import { Deliverer } from '../../src/mda/deliver.js';
import { deliverLmtp } from '../../src/mda/lmtp.js';
import { fileLines } from './helpers.js';
import { peerSkip } from '../harness/peers.js';
import { startLmtpServer } from './lmtp-server.js';
import { action, config, envelope, MESSAGE, tempDir, testUser, writeBody } from './helpers.js';

const HOST = '127.0.0.1';

test('one transaction: LHLO, MAIL, RCPT, dot-stuffed DATA, one reply per recipient', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const srv = await startLmtpServer({
    rcpt: (a) => (a === 'nobody@x' ? '550 5.1.1 <nobody@x> User unknown' : '250 2.1.5 Ok'),
    final: (acc) => acc.map((a) => (a === 'full@x' ? '452 4.2.2 Mailbox full' : '250 2.0.0 Saved')),
  }, { port: 0, host: HOST });
  t.after(srv.close);
  const body = await writeBody(dir, MESSAGE);
  const results = await deliverLmtp({
    destination: `${HOST}:${srv.port}`, lhlo: 'mx.test', mailFrom: 'alice@example.net',
    rcpts: ['bob@x', 'nobody@x', 'full@x'], timeoutMs: 5_000,
  }, fileLines(body));
  assert.deepEqual(results, [
    { result: 'ok', detail: '250 2.0.0 Saved' },
    { result: 'permfail', enhanced: '5.1.1', detail: '550 5.1.1 <nobody@x> User unknown' },
    { result: 'tempfail', enhanced: '4.2.2', detail: '452 4.2.2 Mailbox full' },
  ]);
  assert.deepEqual(srv.recorded.commands, [
    'LHLO mx.test', 'MAIL FROM:<alice@example.net>', 'RCPT TO:<bob@x>', 'RCPT TO:<nobody@x>', 'RCPT TO:<full@x>', 'DATA', 'QUIT',
  ]);
  assert.ok(srv.recorded.data[0]!.includes('\n..a dot line\n'), 'dot-stuffed on the wire');
});

test('no recipient accepted: no DATA is sent', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const srv = await startLmtpServer({ rcpt: () => '450 4.2.1 try later' }, { port: 0, host: HOST });
  t.after(srv.close);
  const body = await writeBody(dir, MESSAGE);
  const [r] = await deliverLmtp({ destination: `${HOST}:${srv.port}`, lhlo: 'x', mailFrom: '', rcpts: ['a@x'], timeoutMs: 5_000 }, fileLines(body));
  assert.equal(r!.result, 'tempfail');
  assert.ok(!srv.recorded.commands.includes('DATA'));
  assert.ok(srv.recorded.commands.includes('MAIL FROM:<>'));
});

test('a bad greeting, a garbled reply, a stall or a refused connection never hang or bounce', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const body = await writeBody(dir, MESSAGE);
  const go = async (script: Parameters<typeof startLmtpServer>[0]) => {
    const srv = await startLmtpServer(script, { port: 0, host: HOST });
    t.after(srv.close);
    const [r] = await deliverLmtp({ destination: `${HOST}:${srv.port}`, lhlo: 'x', mailFrom: 'a@b', rcpts: ['c@d'], timeoutMs: 300 }, fileLines(body));
    return r!;
  };
  assert.equal((await go({ greeting: '554 5.3.2 go away' })).result, 'permfail');
  assert.equal((await go({ greeting: '421 4.3.2 busy' })).result, 'tempfail');
  assert.equal((await go({ greeting: 'HTTP/1.1 400 Bad Request' })).result, 'tempfail');
  const stalled = await go({ stallAt: 'DATA' });
  assert.equal(stalled.result, 'tempfail');
  assert.match(stalled.detail, /timeout/);
  const closed = await startLmtpServer({}, { port: 0, host: HOST });
  const port = closed.port;
  await closed.close();
  const [refused] = await deliverLmtp({ destination: `${HOST}:${port}`, lhlo: 'x', mailFrom: '', rcpts: ['c@d'], timeoutMs: 2_000 }, fileLines(body));
  assert.equal(refused!.result, 'tempfail');
});

test('through the deliverer over a UNIX socket: -u sends the user name, rcpt-to the address', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const sock = join(dir, 'lmtp.sock');
  const srv = await startLmtpServer({}, { path: sock });
  t.after(srv.close);
  const { chmod } = await import('node:fs/promises');
  await chmod(sock, 0o777);
  const user = testUser(join(dir, 'home'));
  const body = await writeBody(dir, MESSAGE);
  const byUser = new Deliverer({ config: config([action({ kind: 'lmtp', destination: sock, rcptTo: false })]), clock: systemClock, serverName: 'mx.test' });
  assert.equal((await byUser.deliver(envelope({ user }), await fileBody(body))).result, 'ok');
  const byRcpt = new Deliverer({ config: config([action({ kind: 'lmtp', destination: sock, rcptTo: true })]), clock: systemClock, serverName: 'mx.test' });
  assert.equal((await byRcpt.deliver(envelope({ user }), await fileBody(body))).result, 'ok');
  const rcpts = srv.recorded.commands.filter((c) => c.startsWith('RCPT'));
  assert.deepEqual(rcpts, [`RCPT TO:<${user.username}>`, 'RCPT TO:<bob@example.org>']);
  assert.match(srv.recorded.data[0]!, /^Return-Path: <alice@example\.net>\nDelivered-To: Bob@Example\.org\nFrom: Alice/);
});

const DOVECOT = '/usr/sbin/dovecot';

/**
 * Dovecot's real master with only its lmtp service, on a UNIX socket in the temp dir, with a
 * throwaway config: static userdb, mail in a maildir under the temp dir.
 */
async function startDovecot(dir: string, uid: number, gid: number): Promise<{ sock: string; stop: () => Promise<void>; logs: () => Promise<string> }> {
  const { spawn } = await import('node:child_process');
  const { writeFile, readFile, access } = await import('node:fs/promises');
  const conf = join(dir, 'dovecot.conf');
  await writeFile(conf, [
    `base_dir = ${dir}/run`, `state_dir = ${dir}/state`, `log_path = ${dir}/dovecot.log`,
    'ssl = no', 'protocols = lmtp', 'listen = 127.0.0.1',
    `mail_location = maildir:${dir}/mail/%n/Maildir`,
    'userdb {', '  driver = static', `  args = uid=${uid} gid=${gid} home=${dir}/mail/%n allow_all_users=yes`, '}',
    'passdb {', '  driver = static', '  args = nopassword=y', '}',
    'service lmtp {', '  unix_listener lmtp {', '    mode = 0666', '  }', '}',
    'service anvil {', '  chroot =', '}',
    'postmaster_address = postmaster@example.org', '',
  ].join('\n'));
  const master = spawn(DOVECOT, ['-F', '-c', conf], { stdio: 'ignore' });
  const exited = new Promise((resolve) => master.once('exit', resolve));
  const sock = join(dir, 'run', 'lmtp');
  for (let i = 0; i < 100 && !(await access(sock).then(() => true, () => false)); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    sock,
    logs: () => readFile(join(dir, 'dovecot.log'), 'utf8').catch(() => ''),
    stop: async () => { master.kill('SIGTERM'); await exited; },
  };
}

test('Dovecot\'s lmtp accepts our delivery and the message lands in its maildir', { skip: peerSkip('dovecot-lmtpd') }, async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('Dovecot\'s master needs root to start its services as its own users');
    return;
  }
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const user = testUser(join(dir, 'home'));
  const { mkdir, chown, readdir, readFile } = await import('node:fs/promises');
  await mkdir(join(dir, 'mail'), { mode: 0o755 });
  await chown(join(dir, 'mail'), user.uid, user.gid);
  const dovecot = await startDovecot(dir, user.uid, user.gid);
  t.after(dovecot.stop);
  const body = await writeBody(dir, MESSAGE);
  const d = new Deliverer({ config: config([action({ kind: 'lmtp', destination: dovecot.sock, rcptTo: false })]), clock: systemClock, serverName: 'mx.test' }, { timeoutMs: 20_000 });
  const r = await d.deliver(envelope({ user }), await fileBody(body));
  assert.equal(r.result, 'ok', `${JSON.stringify(r)}\n${await dovecot.logs()}`);
  assert.match(r.detail, /^250 2\.0\.0 .*Saved/);
  const newDir = join(dir, 'mail', user.username, 'Maildir', 'new');
  const files = await readdir(newDir);
  assert.equal(files.length, 1);
  const text = await readFile(join(newDir, files[0]!), 'utf8');
  assert.match(text, /Delivered-To: Bob@Example\.org/);
  assert.match(text, /\n\.a dot line\n/, 'Dovecot undid our dot-stuffing');
  assert.match(text, /\nFrom the start of a line\n/);
});
