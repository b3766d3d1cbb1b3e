/**
 * tsmtpctl against a running daemon over the control socket: stats in smtpctl's key=value shape
 * and as JSON, log level, trace, prefix abbreviations, errors, and a clear message (exit 1)
 * when no daemon runs. `encrypt` works without a daemon and yields a hash bcrypt verifies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import bcrypt from 'bcryptjs';
import { startDaemon, TSMTPD_BIN } from '../harness/daemon.js';
import { freePort, SmtpTestClient } from '../harness/net.js';
import { eventually } from '../harness/mail.js';

const CTL = resolve(dirname(TSMTPD_BIN), 'tsmtpctl.js');

function ctl(spool: string, ...args: string[]) {
  return spawnSync(process.execPath, [CTL, '--spool', spool, ...args], { encoding: 'utf8', timeout: 10_000 });
}

test('tsmtpctl talks to a running daemon', async () => {
  const port = await freePort();
  const d = await startDaemon({
    config: `listen on 127.0.0.1 port ${port}\naction "l" maildir "%DIR%/md"\nmatch from local for local action "l"\n`,
  });
  try {
    assert.equal(statSync(join(d.spool, 'tsmtpd.sock')).mode & 0o777, 0o600);
    const c = await SmtpTestClient.connect(port);
    await c.reply();
    await c.cmd('QUIT');
    await c.closedByPeer();

    // counters reach the stat role summed every 100 ms (bus/stat-coalescer.ts), not with the session's end
    const stats = await eventually(async () => {
      const r = ctl(d.spool, 'show', 'stats');
      return r.status === 0 && /^smtp\.session\.total\{listener="0"\}=1$/m.test(r.stdout) ? r : undefined;
    }, 'smtp.session.total in show stats');
    assert.match(stats.stdout, /^uptime=\d+$/m);
    assert.match(stats.stdout, /^uptime\.human=0 days, \d\d:\d\d:\d\d$/m);

    const json = JSON.parse(ctl(d.spool, '--json', 'sh', 'stats').stdout) as { stats: { key: string; value: number }[] };
    assert.equal(json.stats.find((s) => s.key === 'smtp.session.total')?.value, 1);

    const pause = ctl(d.spool, 'pause', 'smtp');
    assert.equal(pause.stdout, 'command succeeded\n', pause.stderr);
    assert.equal(ctl(d.spool, 'pa', 'smtp').stdout, 'smtp is already paused\n');
    const refused = await SmtpTestClient.connect(port);
    assert.equal((await refused.reply()).lines[0], '421 4.3.2 Service temporarily unavailable, try again later');
    refused.close();
    assert.equal(ctl(d.spool, 'resume', 'smtp').stdout, 'command succeeded\n');
    const again = await SmtpTestClient.connect(port);
    assert.equal((await again.reply()).code, 220);
    again.close();

    assert.equal(ctl(d.spool, 'log', 'verbose').status, 0);
    assert.match(ctl(d.spool, 'trace', 'smtp').stdout, /"smtp":true/);
    const bad = ctl(d.spool, 'trace', 'nosuch');
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /invalid trace keyword: nosuch/);
    const unknown = ctl(d.spool, 'frobnicate');
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /unknown command: frobnicate/);
  } finally {
    await d.stop();
    await d.cleanup();
  }
});

test('with no daemon, tsmtpctl says so and exits 1', () => {
  const r = ctl('/nonexistent-spool', 'show', 'stats');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /tsmtpd doesn't seem to be running/);
});

test('encrypt prints a bcrypt hash of its argument without a daemon', () => {
  const r = ctl('/nonexistent-spool', 'encrypt', 'secret pass');
  assert.equal(r.status, 0, r.stderr);
  const hash = r.stdout.trim();
  assert.match(hash, /^\$2b\$10\$/);
  assert.ok(bcrypt.compareSync('secret pass', hash));
  assert.ok(!bcrypt.compareSync('secret', hash));
});
