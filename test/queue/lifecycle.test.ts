/**
 * Issue 4's lifecycle on a fake clock: the whole daemon in this process, a message whose remote
 * recipient is refused with 450 at every try. Four days pass in a few seconds: the message is
 * retried on the backoff schedule, the sender gets a delay notice at the warn interval, and at
 * the queue ttl the envelope expires and the sender gets an RFC 3464 failure report.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock } from '../../src/clock.js';
import { loadConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { freePort } from '../harness/net.js';
import { sendMessage, userLine } from '../harness/mail.js';
import { Sink } from '../mta/sink.js';

const HOUR = 3600_000;

test('retries, a delay notice, expiry and the failure report, over four fake days', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-life-'));
  await chmod(dir, 0o711);
  await mkdir(join(dir, 'maildir'), { mode: 0o777 });
  await chmod(join(dir, 'maildir'), 0o777);
  const sink = await Sink.start({ host: '127.0.0.3', rcpt: () => '450 4.2.1 Mailbox busy, try later' });
  const port = await freePort();
  await writeFile(join(dir, 'users'), `${userLine('alice', dir)}\n`);
  await writeFile(join(dir, 'smtpd.conf'), [
    `listen on 127.0.0.1 port ${port} hostname mx.example.test`,
    `table users file:${join(dir, 'users')}`,
    `action "local" maildir "${join(dir, 'maildir')}/%{dest.user}" userbase <users>`,
    `action "out" relay host smtp://127.0.0.3:${sink.port}`,
    'match from any for domain "example.test" action "local"',
    'match from any for domain "remote.test" action "out"',
  ].join('\n'));
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const daemon = new Daemon({
    config: loadConfig(join(dir, 'smtpd.conf')), spool: join(dir, 'spool'), clock, verbose: false,
    backends: { queue: 'fs', scheduler: 'ramqueue', stat: 'ram' }, serverName: 'mx.example.test',
  });
  await mkdir(join(dir, 'spool'), { recursive: true });
  await daemon.start();
  const inflight = async () => (await daemon.bus.request('control', 'control.scheduler.status', {})).inflight;
  /** Let the real I/O a fake-time step started (deliveries, reports) finish. */
  const settle = async () => {
    for (let i = 0; i < 500; i++) {
      await new Promise((r) => setTimeout(r, 5));
      if ((await inflight()) === 0) return;
    }
  };
  const reports = async () => {
    const box = join(dir, 'maildir', 'alice', 'new');
    const names = await readdir(box).catch(() => [] as string[]);
    return Promise.all(names.map((n) => readFile(join(box, n), 'utf8')));
  };
  try {
    const r = await sendMessage(port, 'alice@example.test', ['bob@remote.test'], 'Subject: doomed\r\n\r\nhello');
    assert.equal(r.at(-1)!.code, 250, JSON.stringify(r));
    const tries: number[] = [];
    let seen = 0;
    for (let t = 0; t < 4 * 24 * HOUR + HOUR; t += HOUR / 4) {
      await clock.advance(HOUR / 4);
      await settle();
      const attempts = sink.commands.flat().filter((l) => l.startsWith('RCPT TO:<bob@remote.test>')).length;
      if (attempts > seen) {
        tries.push(t);
        seen = attempts;
      }
    }
    // quadratic backoff: many tries early, fewer later, and still trying on the last day
    assert.ok(seen >= 15, `tries: ${seen}`);
    assert.ok(tries.filter((t) => t < 12 * HOUR).length > tries.filter((t) => t >= 3 * 24 * HOUR).length);
    const got = await reports();
    const delayed = got.filter((m) => m.includes('Subject: Delivery status notification: delayed'));
    const failed = got.filter((m) => m.includes('Subject: Delivery status notification: failed'));
    assert.equal(delayed.length, 1, 'one delay notice at the 4 h warn interval');
    assert.equal(failed.length, 1, 'one failure report at expiry');
    assert.match(failed[0]!, /Content-Type: multipart\/report; report-type=delivery-status/);
    assert.match(failed[0]!, /Final-Recipient: rfc822; bob@remote\.test\r?\nAction: failed\r?\nStatus: 5\.4\.7/);
    assert.match(failed[0]!, /450 4\.2\.1 Mailbox busy/);
    assert.match(failed[0]!, /Subject: doomed/);
    const { envelopes } = await daemon.bus.request('control', 'control.queue.list', { limit: 10 });
    assert.deepEqual(envelopes, [], 'nothing is left in the queue');
  } finally {
    await daemon.stop();
    await sink.close();
    await rm(dir, { recursive: true, force: true });
  }
});
