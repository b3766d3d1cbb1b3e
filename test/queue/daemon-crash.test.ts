/**
 * Issue 4's durability proof, through the whole daemon: 20 sessions pour at least 2000 messages
 * in; the daemon is killed with SIGKILL in the middle; once restarted, every message that got a
 * 250 is delivered (a duplicate would be tolerable, a loss is not) — for the fs and sqlite queues.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SmtpTestClient } from '../harness/net.js';
import { eventually, startMailHost, type MailHost } from '../harness/mail.js';

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
      await c.cmd('RCPT TO:<alice@example.test>');
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

async function deliveredIds(host: MailHost): Promise<Set<string>> {
  const dir = join(host.dir, 'maildir', 'alice', 'new');
  const ids = new Set<string>();
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const text = await readFile(join(dir, name), 'utf8').catch(() => '');
    const m = / id ([0-9a-f]{8})[;\r\n]/.exec(text);
    if (m) ids.add(m[1]!);
  }
  return ids;
}

for (const backend of ['fs', 'sqlite']) {
  test(`SIGKILL under load loses no acknowledged message (queue=${backend})`, { timeout: 300_000 }, async () => {
    const host = await startMailHost({ args: ['-B', `queue=${backend}`] });
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
        const got = await deliveredIds(host);
        return [...atKill].every((id) => got.has(id)) || undefined;
      }, 'every acknowledged message delivered after the restart', 240_000);
      const got = await deliveredIds(host);
      const lost = [...atKill].filter((id) => !got.has(id));
      assert.deepEqual(lost, []);
      assert.ok(atKill.size >= KILL_AFTER);
    } finally {
      await host.stop();
    }
  });
}
