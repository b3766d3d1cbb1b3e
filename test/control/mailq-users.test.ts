/**
 * Issue 15 item 3: mailq works for users other than root. OpenSMTPD's control socket is open to
 * everyone and control.c answers a connection whose peer euid is not 0 only for what users may
 * do; smtpctl.c installs the queue commands with cmd_install_priv, so a user gets "need root
 * privileges". Node cannot read a peer's uid, so tsmtpd keeps its control socket 0600 and adds
 * the mailq socket (0666), which answers `show queue` alone (its lines, not the envelopes) and
 * gives smtpctl's "need root privileges" to every other command. Run as `nobody`: needs root.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { TSMTPD_BIN } from '../harness/daemon.js';
import { eventually, sendMessage, startMailHost, type MailHost } from '../harness/mail.js';

const CTL = resolve(dirname(TSMTPD_BIN), 'tsmtpctl.js');
const NOBODY = 65534;
const IS_ROOT = process.getuid?.() === 0;
let host: MailHost;

function asNobody(script: string, args: string[]) {
  return spawnSync(process.execPath, [script, '--spool', host.daemon.spool, ...args], {
    encoding: 'utf8', timeout: 10_000, cwd: '/', uid: NOBODY, gid: NOBODY,
  });
}

before(async () => {
  host = await startMailHost();
});
after(async () => {
  await host.stop();
});

test('a user other than root: mailq and show queue list the queue; other commands need root', { skip: !IS_ROOT && 'needs root to run as nobody' }, async () => {
  const root = spawnSync(process.execPath, [CTL, '--spool', host.daemon.spool, 'pause', 'mda'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(root.status, 0, root.stderr);
  const r = await sendMessage(host.port, 'sender@client.test', ['alice@example.test'], 'Subject: waiting\r\n\r\nx');
  const msgid = /^250 2\.0\.0 ([0-9a-f]{8}) /.exec(r.at(-1)!.lines[0]!)![1]!;
  assert.equal((await stat(join(host.daemon.spool, 'tsmtpd.sock'))).mode & 0o777, 0o600);
  assert.equal((await stat(join(host.daemon.spool, 'mailq.sock'))).mode & 0o777, 0o666);

  const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-mailq-'));
  try {
    await chmod(dir, 0o755);
    await symlink(CTL, join(dir, 'mailq'));
    const mailq = await eventually(async () => {
      const out = asNobody(join(dir, 'mailq'), []);
      assert.equal(out.status, 0, out.stderr);
      return out.stdout.includes(msgid) ? out.stdout : undefined;
    }, 'the queued message in mailq');
    const line = mailq.split('\n').find((l) => l.startsWith(msgid))!.split('|');
    assert.equal(line[4], 'sender@client.test');
    assert.equal(line[5], 'alice@example.test');

    const json = asNobody(CTL, ['--json', 'show', 'queue']);
    assert.equal(json.status, 0, json.stderr);
    const data = JSON.parse(json.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(data), ['lines']);
    assert.ok((data.lines as string[]).some((l) => l.startsWith(msgid)));

    for (const words of [['pause', 'mta'], ['show', 'envelope', `${msgid}00000001`], ['remove', 'all'], ['show', 'stats']]) {
      const refused = asNobody(CTL, words);
      assert.equal(refused.status, 1, words.join(' '));
      assert.equal(refused.stderr, 'tsmtpctl: need root privileges\n', words.join(' '));
    }
    const still = spawnSync(process.execPath, [CTL, '--spool', host.daemon.spool, 'show', 'status'], { encoding: 'utf8', timeout: 10_000 });
    assert.match(still.stdout, /^MDA paused\nMTA running\n/, 'nothing a user asked for was done');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
