/**
 * Issue 17: a detached daemon logs to syslog's mail facility, as OpenSMTPD's log_init() does
 * without -d, tagged `smtpd` with each line's own priority; and fail2ban reads its
 * authentication failures. The syslog socket here is the test's own (`--log syslog:SOCKET`, a
 * stream socket logger(1) writes RFC 3164 lines to); the test writes what a syslog daemon writes
 * to mail.log and runs fail2ban-regex on it with examples/fail2ban/opensmtpd.conf, and with the
 * system's own opensmtpd filter where its fail2ban ships one (Debian 12's does not).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { copyFile, chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { connect as netConnect, createServer } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { TSMTPD_BIN } from '../harness/daemon.js';
import { makeTestPki } from '../harness/certs.js';
import { eventually } from '../harness/mail.js';
import { freePort, SmtpTestClient } from '../harness/net.js';
import { peerSkip } from '../harness/peers.js';
import { pipeChunks } from '../../src/log.js';

const run = promisify(execFile);
const EXAMPLE_FILTER = resolve(TSMTPD_BIN, '../../../../examples/fail2ban/opensmtpd.conf');
const SYSTEM_FILTER = '/etc/fail2ban/filter.d/opensmtpd.conf';
const b64 = (s: string) => Buffer.from(s).toString('base64');

test('detached, the daemon logs to syslog (mail facility, tag smtpd); fail2ban-regex finds the address of each refused password',
  { skip: peerSkip('logger', 'openssl', 'fail2ban-regex') }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-syslog-'));
    await chmod(dir, 0o755);
    t.after(() => rm(dir, { recursive: true, force: true }));
    // the test's syslog: a stream socket, one RFC 3164 line per message
    let received = '';
    const server = createServer((c) => c.on('data', (d) => (received += d.toString())));
    const socket = join(dir, 'log.sock');
    await new Promise<void>((res) => server.listen(socket, res));
    t.after(() => server.close());
    const pki = await makeTestPki();
    const mx = await pki.issue('mx.example.test');
    await writeFile(join(dir, 'creds'), `alice ${execFileSync('openssl', ['passwd', '-6', 'alice-secret']).toString().trim()}\n`);
    const port = await freePort();
    await writeFile(join(dir, 'smtpd.conf'), [
      `pki mx.example.test cert "${mx.cert}"`,
      `pki mx.example.test key "${mx.key}"`,
      `table creds file:${join(dir, 'creds')}`,
      `listen on 127.0.0.1 port ${port} smtps pki mx.example.test auth <creds> hostname mx.example.test`,
      `action "local" maildir "${dir}/maildir"`,
      'match from local for local action "local"',
      '',
    ].join('\n'));
    const r = spawnSync(process.execPath, [TSMTPD_BIN, '-f', join(dir, 'smtpd.conf'), '--spool', join(dir, 'spool'), '--log', `syslog:${socket}`],
      { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    const pid = Number(/started, pid (\d+)/.exec(r.stdout)?.[1]);
    assert.ok(pid > 0, r.stdout);
    try {
      // <22> is LOG_MAIL|LOG_INFO; the pid is the daemon's
      await eventually(async () => new RegExp(`^<22>\\w{3} [ \\d]\\d [\\d:]{8} smtpd\\[${pid}\\]: - daemon ready `, 'm').test(received) || undefined, 'the ready line in syslog');
      const ca = await readFile(pki.ca);
      for (const guess of ['wrong', 'wrong-again']) {
        const tls = await new Promise<TLSSocket>((res, rej) => {
          // from 127.0.0.5, so the address fail2ban finds is the client's and not any loopback
          const tcp = netConnect({ host: '127.0.0.1', port, localAddress: '127.0.0.5' });
          const s = tlsConnect({ socket: tcp, servername: 'mx.example.test', ca }, () => res(s));
          s.once('error', rej);
        });
        const c = SmtpTestClient.over(tls);
        await c.reply();
        await c.cmd('EHLO guesser.test');
        if (guess === 'wrong') assert.equal((await c.cmd(`AUTH PLAIN ${b64(`\0alice\0${guess}`)}`)).code, 535);
        else {
          await c.cmd('AUTH LOGIN');
          await c.cmd(b64('alice'));
          assert.equal((await c.cmd(b64(guess))).code, 535);
        }
        c.close();
      }
      await eventually(async () => (received.match(/smtp failed-command command="AUTH/g) ?? []).length === 2 || undefined, 'two failures in syslog');
    } finally {
      process.kill(pid, 'SIGTERM');
    }
    // each line carries its own priority: an info line is LOG_MAIL|LOG_INFO
    assert.match(received, /^<22>.* smtpd\[\d+\]: [0-9a-f]{16} smtp authentication user=alice result=permfail$/m);

    // what a syslog daemon writes to mail.log: the time, this host's name, then the tag and message
    const mailLog = received.split('\n').filter(Boolean).map((l) => l.replace(/^<\d+>(\w{3} [ \d]\d [\d:]{8}) /, `$1 ${hostname()} `)).join('\n') + '\n';
    await writeFile(join(dir, 'mail.log'), mailLog);
    const filters = [EXAMPLE_FILTER, ...(existsSync(SYSTEM_FILTER) ? [SYSTEM_FILTER] : [])];
    for (const filter of filters) {
      // a filter outside /etc/fail2ban finds common.conf beside itself
      const f2b = await mkdtemp(join(dir, 'f2b-'));
      await copyFile('/etc/fail2ban/filter.d/common.conf', join(f2b, 'common.conf'));
      await copyFile(filter, join(f2b, 'opensmtpd.conf'));
      const { stdout } = await run('fail2ban-regex', ['-o', 'ip', join(dir, 'mail.log'), join(f2b, 'opensmtpd.conf')]);
      assert.deepEqual(stdout.trim().split('\n'), ['127.0.0.5', '127.0.0.5'], `${filter}:\n${stdout}\n${mailLog}`);
    }
  });

test('to syslog, each write into the shared pipe holds whole lines and at most PIPE_BUF octets, so processes never cut into each other\'s lines', () => {
  const lines = Array.from({ length: 300 }, (_, i) => `${String(i).padStart(16, '0')} smtp connected address=127.0.0.1 host=${'x'.repeat(i % 90)}`);
  const long = 'y'.repeat(5000);
  const chunks = pipeChunks([...lines, long, 'last']);
  assert.equal(chunks.join(''), [...lines, long, 'last'].join('\n') + '\n');
  for (const c of chunks) {
    assert.ok(c.endsWith('\n'));
    assert.ok(Buffer.byteLength(c) <= 4096 || c === `${long}\n`, `${Buffer.byteLength(c)} octets`);
  }
  assert.ok(chunks.includes(`${long}\n`), 'a line longer than PIPE_BUF goes alone');
});
