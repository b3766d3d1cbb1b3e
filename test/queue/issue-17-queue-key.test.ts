/**
 * Issue 17, queue encryption: the key as smtpd.c main() reads it when smtpd.conf does not write
 * it (`queue encryption stdin` or `-`: a line of standard input; `queue encryption` alone:
 * getpass() on the terminal), checked as crypto_setup() checks it (32 octets), and used for what
 * queue_backend.c encrypts: bodies and envelopes, in crypto.c's framing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TSMTPD_BIN } from '../harness/daemon.js';
import { eventually, sendMessage, startMailHost } from '../harness/mail.js';
import { freePort } from '../harness/net.js';
import { CTL } from '../harness/procs.js';

const RULES = 'action a relay\nmatch from any for any action a\n';
const KEY = '0123456789abcdef0123456789abcdef';
const SECRET = 'Subject: sealed\r\n\r\nthe secret body\r\n';

/** Every file under the spool's queue/ holding message data (the fs queue's message file: the body, then its envelope records). */
async function queuedFiles(spool: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(dir, e.name));
      else if (/^[0-9a-f]{8}([0-9a-f]{8})?$|^message$/.test(e.name)) out.push(await readFile(join(dir, e.name)));
    }
  };
  await walk(join(spool, 'queue'));
  return out;
}

// a bare - is parse.y's '-' token, not a STRING: smtpd.conf quotes it
for (const word of ['stdin', '"-"', 'STDIN']) {
  test(`queue encryption ${word}: the key is the first line of standard input; bodies and envelopes are sealed with it (smtpd.c main, queue_backend.c)`, async () => {
    const host = await startMailHost({
      stdin: `${KEY}\nnot the key\n`,
      // a relay nobody answers: the message stays queued where we can look at it
      extra: `queue encryption ${word}\naction "out" relay host smtp://127.0.0.1:1`,
      rules: 'match from any for domain "remote.test" action "out"\nmatch from any for domain "example.test" action "local"',
    });
    try {
      assert.equal((await sendMessage(host.port, 'alice@client.test', ['bob@remote.test'], SECRET)).at(-1)!.code, 250);
      const files = await eventually(async () => { const f = await queuedFiles(host.daemon.spool); return f.length >= 1 && f; }, 'the queued body and envelope');
      for (const f of files) {
        assert.equal(f[0], 0x01, 'crypto.c API_VERSION');
        assert.ok(!f.includes('secret body') && !f.includes('bob@remote.test') && !f.includes('alice@client.test'), 'nothing in clear');
      }
      // the queue reads them back with the key it was given: the envelope shows, the body delivers
      const shown = spawnSync(process.execPath, [CTL, '--spool', host.daemon.spool, 'show', 'queue'], { encoding: 'utf8' });
      assert.match(shown.stdout, /bob@remote\.test/);
      assert.equal((await sendMessage(host.port, 'alice@client.test', ['bob@example.test'], SECRET)).at(-1)!.code, 250);
      const box = await eventually(async () => { const m = await host.maildir('bob'); return m.length > 0 && m; }, 'local delivery');
      assert.match(box[0]!, /the secret body/);
      // restarted with the same key on stdin, the sealed envelope is read back, not set aside
      await host.daemon.stop();
      host.daemon = await host.daemon.restart();
      const again = spawnSync(process.execPath, [CTL, '--spool', host.daemon.spool, 'show', 'queue'], { encoding: 'utf8' });
      assert.match(again.stdout, /bob@remote\.test/);
    } finally {
      await host.stop();
    }
  });
}

test('a queue key read at start that is not 32 octets, or no key at all, stops the daemon (crypto_setup, getline)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-qkey-'));
  try {
    await writeFile(join(dir, 'smtpd.conf'), `queue encryption stdin\nlisten on 127.0.0.1 port ${await freePort()}\n${RULES}`);
    for (const [input, why] of [['short\n', /invalid key for queue encryption/], ['', /no key on standard input/]] as const) {
      const r = spawnSync(process.execPath, [TSMTPD_BIN, '-d', '-f', join(dir, 'smtpd.conf'), '--spool', join(dir, 'spool')], { input, encoding: 'utf8', timeout: 10_000 });
      assert.equal(r.status, 3, r.stderr);
      assert.match(r.stderr, why);
    }
    // -n reads no key: what it checks is the config
    const n = spawnSync(process.execPath, [TSMTPD_BIN, '-n', '-f', join(dir, 'smtpd.conf')], { input: '', encoding: 'utf8' });
    assert.equal(n.status, 0, n.stderr);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('queue encryption alone asks "queue key: " on the terminal with echo off (getpass)', { skip: spawnSync('script', ['--version']).status !== 0 && 'needs script(1) from util-linux' }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-getpass-'));
  // the queue process (another user when we are root) reaches its spool through here
  await chmod(dir, 0o755);
  await writeFile(join(dir, 'smtpd.conf'), `queue encryption\nlisten on 127.0.0.1 port ${await freePort()}\n${RULES}`);
  const argv = [process.execPath, TSMTPD_BIN, '-d', '-f', join(dir, 'smtpd.conf'), '--spool', join(dir, 'spool')];
  // script(1) gives the daemon a terminal of its own; what we write is what is typed on it
  const child = spawn('script', ['-qefc', argv.map((a) => `'${a}'`).join(' '), '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout.on('data', (c: Buffer) => void (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => void (out += c.toString()));
  try {
    await eventually(async () => out.includes('queue key: '), 'the prompt', 15_000);
    child.stdin.write(`${KEY}\n`);
    await eventually(async () => / daemon ready /.test(out), "the daemon ready", 20_000).catch((err: Error) => assert.fail(`${err.message}:\n${out}`));
    assert.ok(!out.includes(KEY), 'the key is not echoed');
  } finally {
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {}
    await new Promise((r) => child.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  }
});
