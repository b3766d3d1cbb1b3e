/**
 * Issue 4's durability proof, through the whole daemon: 20 sessions pour at least 2000 messages
 * in; the daemon is killed with SIGKILL in the middle; once restarted, every message that got a
 * 250 is delivered (a duplicate would be tolerable, a loss is not) — for the fs and sqlite queues.
 * Mail is relayed to a sink in this process, so the proof does not wait on local deliveries.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SmtpTestClient } from '../harness/net.js';
import { eventually, startMailHost, type MailHost } from '../harness/mail.js';
import { Sink } from '../mta/sink.js';

const SESSIONS = 20;
const TOTAL = 2000;
const KILL_AFTER = 1000;

/** One session sending messages back to back until told to stop or the daemon goes away. */
async function sender(host: MailHost, acked: Set<string>, budget: { left: number }, stop: () => boolean): Promise<void> {
  let c: SmtpTestClient;
  try {
    c = await SmtpTestClient.connect(host.port);
    await c.reply();
    await c.cmd('EHLO load.client.test');
  } catch {
    return;
  }
  try {
    while (!stop() && budget.left-- > 0) {
      await c.cmd('MAIL FROM:<load@client.test>');
      await c.cmd('RCPT TO:<someone@remote.test>');
      await c.cmd('DATA');
      const r = await c.cmd(`Subject: load\r\n\r\n${`${'x'.repeat(78)}\r\n`.repeat(25)}.`);
      const m = /^250 2\.0\.0 ([0-9a-f]{8}) /.exec(r.lines[0]!);
      if (m) acked.add(m[1]!);
    }
  } catch {
    // the daemon was killed under us: whatever was not acknowledged may be lost, and that is fine
  } finally {
    c.close();
  }
}

/** The queue ids of the messages the sink received, from the Received: line the daemon wrote. */
function deliveredIds(sink: Sink): Set<string> {
  const ids = new Set<string>();
  for (const tx of sink.transactions) {
    const m = / id ([0-9a-f]{8})[;\r\n]/.exec(tx.body);
    if (m) ids.add(m[1]!);
  }
  return ids;
}

for (const backend of ['fs', 'sqlite']) {
  test(`SIGKILL under load loses no acknowledged message (queue=${backend})`, { timeout: 300_000 }, async () => {
    const sink = await Sink.start({ host: '127.0.0.2', caps: ['PIPELINING'] });
    const host = await startMailHost({
      args: ['-B', `queue=${backend}`],
      extra: `action "out" relay host smtp://127.0.0.2:${sink.port}`,
      rules: 'match from any for domain "remote.test" action "out"',
    });
    try {
      const acked = new Set<string>();
      const budget = { left: TOTAL };
      let killed = false;
      const load = Promise.all(Array.from({ length: SESSIONS }, () => sender(host, acked, budget, () => killed)));
      await eventually(async () => acked.size >= KILL_AFTER || undefined, `${KILL_AFTER} acknowledged messages`, 120_000);
      await host.daemon.kill();
      killed = true;
      await load;
      const atKill = new Set(acked);
      host.daemon = await host.daemon.restart();
      await eventually(async () => {
        const got = deliveredIds(sink);
        return [...atKill].every((id) => got.has(id)) || undefined;
      }, 'every acknowledged message delivered after the restart', 240_000);
      const got = deliveredIds(sink);
      const lost = [...atKill].filter((id) => !got.has(id));
      assert.deepEqual(lost, []);
      assert.ok(atKill.size >= KILL_AFTER);
    } finally {
      await host.stop();
      await sink.close();
    }
  });
}
