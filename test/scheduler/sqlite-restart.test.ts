/**
 * `-B scheduler=sqlite` across a daemon restart: an envelope paused with `tsmtpctl pause
 * envelope` is still paused after the restart (ramqueue rebuilds it from the queue as
 * scheduler_ram_insert() does, unpaused), and an envelope waiting for its retry keeps the time
 * the scheduler gave it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { startDaemon, TSMTPD_BIN, type DaemonHandle } from '../harness/daemon.js';
import { eventually, sendMessage } from '../harness/mail.js';
import { freePort } from '../harness/net.js';

const CTL = resolve(dirname(TSMTPD_BIN), 'tsmtpctl.js');

function ctl(spool: string, ...args: string[]): string {
  const r = spawnSync(process.execPath, [CTL, '--spool', spool, ...args], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 0, `tsmtpctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

interface Queued { id: string; msgid: string; tries: number; scheduler: { suspended: boolean; nextTry: number; state: string } | null }
const queue = (spool: string) => (JSON.parse(ctl(spool, '--json', 'show', 'queue')) as { envelopes: Queued[] }).envelopes;

async function send(port: number, subject: string): Promise<string> {
  const r = await sendMessage(port, 'a@client.test', ['b@remote.test'], `Subject: ${subject}\r\n\r\nbody\r\n`);
  assert.equal(r.at(-1)!.code, 250);
  return /^250 2\.0\.0 ([0-9a-f]{8}) /.exec(r.at(-1)!.lines[0]!)![1]!;
}

test('sqlite scheduler: a paused envelope stays paused and a retry time is kept across a restart', { timeout: 90_000 }, async () => {
  // nobody listens there: every try is refused and retried later
  const relayPort = await freePort('127.0.0.2');
  const port = await freePort();
  let d: DaemonHandle = await startDaemon({
    config: [
      `listen on 127.0.0.1 port ${port} hostname mx.example.test`,
      `action "out" relay host smtp://127.0.0.2:${relayPort}`,
      'match from any for domain "remote.test" action "out"',
    ].join('\n'),
    args: ['-B', 'scheduler=sqlite'],
  });
  try {
    const retried = await send(port, 'retried');
    const before = await eventually(async () => queue(d.spool).find((e) => e.msgid === retried && e.tries === 1 && e.scheduler?.state === 'pending'), 'the first try refused');
    ctl(d.spool, 'pause', 'mta');
    const paused = await send(port, 'paused');
    assert.match(ctl(d.spool, 'pause', 'envelope', paused), /1 envelope paused/);
    ctl(d.spool, 'resume', 'mta');

    assert.equal(await d.stop(), 0);
    d = await d.restart();
    const after = await eventually(async () => {
      const q = queue(d.spool);
      return q.length === 2 && q.every((e) => e.scheduler) ? q : undefined;
    }, 'both envelopes scheduled again');
    const p = after.find((e) => e.msgid === paused)!;
    assert.equal(p.scheduler!.suspended, true, 'still paused');
    assert.match(ctl(d.spool, 'show', 'queue', paused), /\|suspend\|/);
    const r = after.find((e) => e.msgid === retried)!;
    assert.equal(r.tries, 1);
    assert.equal(r.scheduler!.nextTry, before.scheduler!.nextTry, 'the retry time');
    assert.ok(r.scheduler!.nextTry > Math.floor(Date.now() / 1000), 'not tried again at start');

    // resumed, it is tried (and refused) like any other
    ctl(d.spool, 'resume', 'envelope', paused);
    await eventually(async () => queue(d.spool).find((e) => e.msgid === paused && e.tries === 1), 'the resumed envelope tried');
  } finally {
    await d.stop();
    await d.cleanup();
  }
});
