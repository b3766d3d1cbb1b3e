/**
 * Issue 13 item 12: `tsmtpctl schedule` tries the envelopes now even when their route is backed
 * off. In OpenSMTPD, smtpctl's do_schedule sends IMSG_CTL_SCHEDULE through control to the
 * scheduler alone (scheduler_imsg → backend->schedule, scheduler_ram_schedule: the envelope's
 * next try becomes now); a disabled route is enabled again only by `resume route` (mta_imsg,
 * IMSG_CTL_RESUME_ROUTE: ROUTE_DISABLED cleared, penalty 0) or when its runq timer fires. An
 * admin's "try now" turned away unheard by a backed-off route was the drain this issue saw, so
 * tsmtpd's `schedule` first resumes the routes in backoff, as IMSG_CTL_RESUME_ROUTE does, then
 * schedules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { startDaemon, TSMTPD_BIN } from '../harness/daemon.js';
import { eventually, sendMessage } from '../harness/mail.js';
import { freePort } from '../harness/net.js';
import { Sink } from '../mta/sink.js';
import { RouteTable } from '../../src/mta/route.js';

const CTL = resolve(dirname(TSMTPD_BIN), 'tsmtpctl.js');

function ctl(spool: string, ...args: string[]): string {
  const r = spawnSync(process.execPath, [CTL, '--spool', spool, ...args], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 0, `tsmtpctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

test('resumeAll enables the routes in backoff and forgets their penalty; a route out of backoff keeps it', () => {
  const routes = new RouteTable();
  const t0 = 1_000_000;
  routes.failed('down', t0);
  routes.failed('rested', t0 - 100_000);
  assert.equal(routes.resumeAll(t0 + 1), 1);
  assert.ok(!routes.disabled('down', t0 + 1));
  assert.deepEqual(routes.snapshot().map((r) => r.key), ['rested']);
});

test('a route in backoff is tried at once after `schedule all`, not after its backoff', { timeout: 60_000 }, async () => {
  const relayPort = await freePort('127.0.0.2');
  const port = await freePort();
  const d = await startDaemon({
    config: [
      `listen on 127.0.0.1 port ${port} hostname mx.example.test`,
      `action "out" relay host smtp://127.0.0.2:${relayPort}`,
      'match from any for domain "remote.test" action "out"',
    ].join('\n'),
  });
  let sink: Sink | undefined;
  try {
    const replies = await sendMessage(port, 'a@client.test', ['b@remote.test'], 'Subject: backoff\r\n\r\nbody\r\n');
    assert.equal(replies.at(-1)!.code, 250);
    // nobody listens yet: the connection is refused and the route rests 15 s, the envelope 400 s
    await d.waitForLog(/mta-error .*backoff=15/);
    sink = await Sink.start({ host: '127.0.0.2', port: relayPort });
    assert.match(ctl(d.spool, 'show', 'routes'), new RegExp(`>127\\.0\\.0\\.2:${relayPort} penalty=1 D until=\\+\\d+s`), 'still backed off');
    assert.match(ctl(d.spool, 'schedule', 'all'), /^1 envelope scheduled$/m);
    await eventually(async () => sink!.transactions.length === 1 || undefined, 'the delivery', 30_000);
    assert.match(d.logs(), /mta control op=resume-route route=all resumed=1/);
    assert.equal(ctl(d.spool, 'show', 'routes'), '');
  } finally {
    await d.stop();
    await sink?.close();
    await d.cleanup();
  }
});
