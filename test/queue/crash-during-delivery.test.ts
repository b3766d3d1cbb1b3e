/**
 * A crash during delivery costs a duplicate, never the message: the next hop has the whole
 * message (it got the final dot) when every process of the daemon is killed with SIGKILL, so the
 * queue never heard the result. After the restart the envelope is still queued and the message
 * goes out again — the sink holds two copies and the queue ends empty. Same for fs and sqlite.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SmtpTestClient } from '../harness/net.js';
import { eventually, startMailHost } from '../harness/mail.js';
import { daemonProcesses } from '../harness/procs.js';
import { Sink } from '../mta/sink.js';

for (const backend of ['fs', 'sqlite']) {
  test(`SIGKILL while the next hop takes the message: delivered again after the restart (queue=${backend})`, { timeout: 120_000 }, async () => {
    let pids: number[] = [];
    let kills = 0;
    const sink = await Sink.start({
      host: '127.0.0.2',
      dataEnd: () => {
        // the first time only: the whole daemon dies before our 250 can reach it
        if (kills++ === 0) for (const pid of pids) process.kill(pid, 'SIGKILL');
        return undefined;
      },
    });
    const host = await startMailHost({
      args: ['-B', `queue=${backend}`],
      extra: `action "out" relay host smtp://127.0.0.2:${sink.port}`,
      rules: 'match from any for domain "remote.test" action "out"',
    });
    try {
      pids = daemonProcesses(host.daemon.spool).map((p) => p.pid);
      assert.ok(pids.length >= 5, 'the parent and its roles');
      const c = await SmtpTestClient.connect(host.port);
      await c.reply();
      await c.cmd('EHLO client.test');
      await c.cmd('MAIL FROM:<a@client.test>');
      await c.cmd('RCPT TO:<b@remote.test>');
      await c.cmd('DATA');
      const r = await c.cmd('Subject: once\r\nMessage-ID: <crash@client.test>\r\n\r\nbody\r\n.');
      assert.equal(r.code, 250);
      c.close();
      await eventually(async () => kills > 0 || undefined, 'the first delivery attempt', 30_000);
      await host.daemon.kill();
      host.daemon = await host.daemon.restart();
      await eventually(async () => sink.transactions.length >= 2 || undefined, 'the message delivered again', 60_000);
      assert.deepEqual(sink.transactions.map((tx) => /Message-ID: <crash@client.test>/.test(tx.body)), [true, true]);
    } finally {
      await host.stop();
      await sink.close();
    }
  });
}
