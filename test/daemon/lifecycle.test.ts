/**
 * The daemon's command-line contract, end to end on the real binary: `-n` verdicts with
 * file:line, a 220 banner once started, exit 0 within 2 s of SIGTERM with 421 to open sessions,
 * exit 3 when the spool is taken, exit 2 on usage errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startDaemon, TSMTPD_BIN } from '../harness/daemon.js';
import { freePort, SmtpTestClient } from '../harness/net.js';

function run(args: string[]) {
  return spawnSync(process.execPath, [TSMTPD_BIN, ...args], { encoding: 'utf8', timeout: 20_000 });
}

async function confFile(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-cli-'));
  await chmod(dir, 0o755);
  const path = join(dir, 'smtpd.conf');
  await writeFile(path, text);
  return path;
}

function config(port: number): string {
  return [
    `listen on 127.0.0.1 port ${port} hostname mx.test.local`,
    'action "local" maildir "%DIR%/maildir/%{user.username}"',
    'match from local for local action "local"',
    '',
  ].join('\n');
}

test('-n accepts a valid config and exits 0', async () => {
  const r = run(['-n', '-f', await confFile(config(2525).replace('%DIR%', '/tmp'))]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /configuration OK/);
});

test('-n rejects a broken config with file:line and exit 1', async () => {
  const path = await confFile('listen on 127.0.0.1\n\nmatch from any for any action "nosuch"\n');
  const r = run(['-n', '-f', path]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`^tsmtpd: ${path.replace(/[.]/g, '\\.')}:3: `, 'm'));
});

test('a missing config file is a config error, exit 1', () => {
  const r = run(['-n', '-f', '/nonexistent/smtpd.conf']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /\/nonexistent\/smtpd\.conf/);
});

test('usage errors exit 2', () => {
  const r = run(['-Q']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage: tsmtpd/);
});

test('started: 220 banner; SIGTERM: 421 to open sessions and exit 0 within 2 s', async () => {
  const port = await freePort();
  const d = await startDaemon({ config: config(port) });
  try {
    const c = await SmtpTestClient.connect(port);
    const banner = await c.reply();
    assert.equal(banner.code, 220);
    assert.match(banner.text, /^mx\.test\.local ESMTP/);
    const t0 = Date.now();
    const exit = d.stop();
    const bye = await c.reply();
    assert.equal(bye.code, 421);
    assert.equal(await exit, 0);
    assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
    c.close();
  } finally {
    await d.kill();
    await d.cleanup();
  }
});

test('a second daemon on the same spool refuses to start with exit 3', async () => {
  const port = await freePort();
  const d = await startDaemon({ config: config(port) });
  try {
    const r = run(['-d', '-f', d.configPath, '--spool', d.spool]);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /another tsmtpd \(pid \d+\) is running/);
  } finally {
    await d.stop();
    await d.cleanup();
  }
});

test('without -d the daemon detaches, logs to the --log file and stops on SIGTERM', async () => {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-detach-'));
  await chmod(dir, 0o755);
  const path = join(dir, 'smtpd.conf');
  await writeFile(path, config(port).replace('%DIR%', dir));
  const spool = join(dir, 'spool');
  const r = run(['-f', path, '--spool', spool, '--log', join(dir, 'tsmtpd.log')]);
  assert.equal(r.status, 0, r.stderr);
  const pid = Number(/started, pid (\d+)/.exec(r.stdout)?.[1]);
  assert.ok(pid > 0, r.stdout);
  try {
    const c = await SmtpTestClient.connect(port);
    assert.equal((await c.reply()).code, 220);
    c.close();
  } finally {
    process.kill(pid, 'SIGTERM');
  }
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      break;
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  assert.throws(() => process.kill(pid, 0), /ESRCH/);
  const logText = await readFile(join(dir, 'tsmtpd.log'), 'utf8');
  assert.match(logText, /^\d{4}-\d\d-\d\dT[\d:.]+Z - daemon ready /m);
  assert.match(logText, /daemon shutdown signal=TERM/);
});

test('-n checks what start needs, and start refuses the same way: a missing table file is file:line, exit 1', async () => {
  // (the smtpd.conf(5) examples and the published-style corpus: test/config/corpus.test.ts)
  const path = await confFile('listen on 127.0.0.1\n\ntable aliases file:/nonexistent/tsmtpd/aliases\n' + 'action "a" mbox alias <aliases>\nmatch for local action "a"\n');
  for (const args of [['-n'], ['-d', '--spool', join(dirname(path), 'spool')]]) {
    const r = run([...args, '-f', path]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^tsmtpd: ${path.replace(/[.]/g, '\\.')}:3: table aliases: .*ENOENT`, 'm'));
  }
});
