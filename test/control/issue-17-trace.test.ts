/**
 * Issue 17: `tsmtpctl trace SUBSYSTEM` and `profile imsg|queue` act, as smtpd's log_trace() and
 * profiling do (smtpd.h TRACE_*, PROFILE_*; smtpctl str_to_trace(), str_to_profile()): nothing is
 * traced until asked; `trace all` makes every process write its subsystems' trace lines whatever
 * the log level; `untrace all` stops them; `profile imsg` times each message a role handles
 * (imsg_dispatch), `profile queue` each queue operation (queue_backend.c profile_enter/leave).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TRACE_SUBSYSTEMS } from '../../src/trace.js';
import { eventually, sendMessage, startMailHost } from '../harness/mail.js';
import { CTL } from '../harness/procs.js';
import { Sink } from '../mta/sink.js';

const GATE = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/filters/gate.py');
const python = spawnSync('/usr/bin/python3', ['--version']).status === 0;

function ctl(spool: string, ...args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [CTL, '--spool', spool, ...args], { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

const traced = (logs: string) => new Set([...logs.matchAll(/ trace subsystem=(\w+)/g)].map((m) => m[1]!));

test('trace all / untrace all, profile imsg and queue: every subsystem traces, only while asked', { timeout: 120_000, skip: !python && 'needs python3 for the filter' }, async () => {
  const gate = await mkdtemp(join(tmpdir(), 'tsmtpd-gate-'));
  await chmod(gate, 0o777);
  // a relay that refuses the recipient: an mta session, then a bounce to the local sender
  const sink = await Sink.start({ host: '127.0.0.1', rcpt: () => '550 5.1.1 no such user\r\n' });
  const host = await startMailHost({
    listen: false,
    extra: [
      `filter "gate" proc-exec "/usr/bin/python3 ${GATE} ${gate} mail-from"`,
      'listen on 127.0.0.1 port %PORT% hostname mx.example.test filter "gate"',
      `action "out" relay host smtp://127.0.0.1:${sink.port}`,
    ].join('\n'),
    rules: 'match from any for domain "remote.test" action "out"\nmatch from any for domain "example.test" action "local"',
  });
  try {
    const spool = host.daemon.spool;
    const mail = async () => {
      assert.equal((await sendMessage(host.port, 'alice@example.test', ['bob@example.test'], 'Subject: a\r\n\r\nx\r\n')).at(-1)!.code, 250);
      assert.equal((await sendMessage(host.port, 'alice@example.test', ['nobody@remote.test'], 'Subject: b\r\n\r\nx\r\n')).at(-1)!.code, 250);
    };
    await mail();
    await eventually(async () => (await host.maildir('alice')).length >= 1 || undefined, 'the bounce', 20_000);
    assert.deepEqual([...traced(host.daemon.logs())], [], 'nothing traced before asked');
    assert.doesNotMatch(host.daemon.logs(), / profile-(imsg|queue) /);

    assert.notEqual(ctl(spool, 'trace', 'nonsense').status, 0, 'str_to_trace(): an unknown keyword is refused');
    for (const args of [['trace', 'all'], ['profile', 'imsg'], ['profile', 'queue']]) assert.equal(ctl(spool, ...args).status, 0);
    const from = host.daemon.logs().length;
    await mail();
    await eventually(async () => (await host.maildir('alice')).length >= 2 || undefined, 'the second bounce', 20_000);
    await eventually(async () => TRACE_SUBSYSTEMS.every((s) => traced(host.daemon.logs().slice(from)).has(s)) || undefined, 'every subsystem traced', 10_000)
      .catch(() => assert.fail(`traced: ${[...traced(host.daemon.logs().slice(from))].join(' ')}`));
    const during = host.daemon.logs().slice(from);
    assert.match(during, / profile-imsg process=\S+ from=\S+ imsg=\S+ seconds=\d+\.\d{9}/);
    assert.match(during, / profile-queue op=queue_message_commit seconds=\d+\.\d{9}/);
    // the daemon logs at info: trace lines are written whatever the level, as log_trace0() does
    assert.match(during, / trace subsystem=smtp dir=<<< line="?MAIL FROM/);

    for (const args of [['untrace', 'all'], ['unprofile', 'imsg'], ['unprofile', 'queue']]) assert.equal(ctl(spool, ...args).status, 0);
    // the parent tells every process; one more round trip so all of them have heard
    ctl(spool, 'show', 'stats');
    // lines of the last round may still be on their way through the pipes: wait for quiet
    let size = -1;
    await eventually(async () => {
      const now = host.daemon.logs().length;
      const quiet = now === size;
      size = now;
      await new Promise((r) => setTimeout(r, 300));
      return quiet || undefined;
    }, 'the log to settle', 10_000);
    const after = host.daemon.logs().length;
    await mail();
    await eventually(async () => (await host.maildir('alice')).length >= 3 || undefined, 'the third bounce', 20_000);
    assert.deepEqual([...traced(host.daemon.logs().slice(after))], [], host.daemon.logs().slice(after).split("\n").filter((l) => l.includes(" trace ")).slice(0, 5).join("\n"));
    assert.doesNotMatch(host.daemon.logs().slice(after), / profile-(imsg|queue) /);
  } finally {
    await host.stop();
    await sink.close();
    await rm(gate, { recursive: true, force: true });
  }
});
