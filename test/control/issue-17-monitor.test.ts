/**
 * Issue 17: every column of `tsmtpctl monitor` reads a counter the daemon increments. smtpctl's
 * do_monitor() prints control.c's digest: smtp.session and scheduler.envelope counted up and
 * down (control_digest_update), the scheduler.delivery.* results (scheduler.c), the expired and
 * removed envelopes (scheduler_process_*), and queue.bounce (queue_bounce()). One daemon goes
 * through each event once, then every column's counter must have moved.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { MONITOR_COLUMNS, MONITOR_HEADER, sumByKey, type StatLine } from '../../src/control/format.js';
import { eventually, sendMessage, startMailHost } from '../harness/mail.js';
import { CTL } from '../harness/procs.js';
import { Sink } from '../mta/sink.js';

function ctl(spool: string, ...args: string[]): string {
  const r = spawnSync(process.execPath, [CTL, '--spool', spool, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

const stats = (spool: string) => sumByKey((JSON.parse(ctl(spool, '--json', 'show', 'stats')) as { stats: StatLine[] }).stats);

test('every monitor column reads a counter that moves: conn, disc, enq, deq, ok, tmpfail, prmfail, loop, expire, remove, bounce', { timeout: 120_000 }, async () => {
  const sink = await Sink.start({ host: '127.0.0.1', rcpt: () => '550 5.1.1 no such user\r\n' });
  const host = await startMailHost({
    extra: [
      `action "refuse" relay host smtp://127.0.0.1:${sink.port}`,
      // nobody listens on port 1: each try is a temporary failure
      'action "hold" relay host smtp://127.0.0.1:1',
      'action "short" relay host smtp://127.0.0.1:1 ttl 3s',
    ].join('\n'),
    rules: [
      'match from any for domain "refuse.test" action "refuse"',
      'match from any for domain "hold.test" action "hold"',
      'match from any for domain "short.test" action "short"',
      'match from any for domain "example.test" action "local"',
    ].join('\n'),
  });
  try {
    const spool = host.daemon.spool;
    const send = async (to: string, body = 'Subject: t\r\n\r\nbody\r\n') =>
      assert.equal((await sendMessage(host.port, 'alice@example.test', [to], body)).at(-1)!.code, 250);
    await send('bob@example.test');
    // mda.c: the recipient's own Delivered-To already there is a loop
    await send('bob@example.test', 'Delivered-To: bob@example.test\r\nSubject: loop\r\n\r\nbody\r\n');
    await send('nobody@refuse.test');
    await send('later@hold.test');
    await send('soon@short.test');
    await eventually(async () => (stats(spool).get('scheduler.delivery.tempfail') ?? 0) >= 2 || undefined, 'two temporary failures', 30_000);
    const held = (JSON.parse(ctl(spool, '--json', 'show', 'queue')) as { envelopes: { id: string; rcpt: string }[] }).envelopes;
    const evpid = held.find((e) => e.rcpt === 'later@hold.test')?.id;
    assert.ok(evpid, JSON.stringify(held));
    ctl(spool, 'remove', evpid);
    const deltas = MONITOR_COLUMNS.filter((c) => c.delta);
    const moved = await eventually(async () => {
      const now = stats(spool);
      return deltas.every((c) => (now.get(c.key) ?? 0) > 0) && now;
    }, 'every monitor counter moved', 40_000).catch(() => stats(spool));
    for (const c of deltas) assert.ok((moved.get(c.key) ?? 0) > 0, `${c.title} (${c.key}) never moved: ${JSON.stringify([...moved])}`);
    // the levels are the counters' running balance, as curr = connect - disconnect
    assert.equal(moved.get('smtp.session'), (moved.get('smtp.session.total') ?? 0) - (moved.get('smtp.session.closed') ?? 0));
    assert.ok(moved.has('scheduler.envelope'));

    // and monitor prints them: smtpctl's header, then a row per second
    const mon = spawn(process.execPath, [CTL, '--spool', spool, 'monitor'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    mon.stdout.on('data', (c: Buffer) => void (out += c.toString()));
    // the first row is the baseline (its changes are 0): send once it is there
    await eventually(async () => out.split('\n').length > 3 || undefined, 'the first monitor row', 10_000);
    await send('bob@example.test');
    await eventually(async () => out.split('\n').length > 6 || undefined, 'monitor rows', 10_000);
    mon.kill();
    assert.ok(out.startsWith(MONITOR_HEADER), out);
    const rows = out.slice(MONITOR_HEADER.length).trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number));
    assert.ok(rows.every((r) => r.length === 13), out);
    // the message sent while monitoring shows as a connection, a disconnection, an enqueued and a delivered envelope
    const sum = (i: number) => rows.reduce((n, r) => n + r[i]!, 0);
    assert.ok(sum(1) >= 1 && sum(2) >= 1 && sum(4) >= 1 && sum(6) >= 1, out);
  } finally {
    await host.stop();
    await sink.close();
  }
});
