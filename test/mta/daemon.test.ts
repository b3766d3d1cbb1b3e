/** End to end through the real daemon: a message for a remote domain leaves by `relay host smtp://` to the sink. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, sendMessage, startMailHost } from '../harness/mail.js';
import { Sink } from './sink.js';

test('the daemon relays a remote recipient to the smarthost, recipients batched, with the mta delivery line', async (t) => {
  const sink = await Sink.start({ host: '127.0.0.2', caps: ['PIPELINING', 'SIZE 1000000'] });
  const host = await startMailHost({
    extra: `action "out" relay host smtp://127.0.0.2:${sink.port} helo relay.example.test`,
    rules: 'match from any for domain "remote.test" action "out"\nmatch from local for local action "local"',
  });
  t.after(async () => { await host.stop(); await sink.close(); });
  const body = 'Subject: out\r\n\r\nline one\r\n.dotted';
  const replies = await sendMessage(host.port, 'sender@client.test', ['a@remote.test', 'b@remote.test'], body);
  assert.equal(replies.at(-1)!.code, 250, JSON.stringify(replies));
  const tx = await eventually(async () => sink.transactions[0], 'the relayed message');
  assert.equal(tx.mail.split(' ')[0], 'MAIL');
  assert.match(tx.mail, /^MAIL FROM:<sender@client\.test> SIZE=\d+$/);
  assert.deepEqual(tx.rcpts.map((r) => r.replace(/ .*/, '')).sort(), ['RCPT', 'RCPT']);
  assert.ok(tx.body.endsWith(body + '\r\n'), tx.body);
  assert.ok(sink.commands[0]!.includes('EHLO relay.example.test'));
  await host.daemon.waitForLog(/mta delivery evpid=\S+ from=<sender@client\.test> to=<b@remote\.test> .*relay="127\.0\.0\.2 \[127\.0\.0\.2\]".*result=Ok/);
  assert.equal(sink.transactions.length, 1, 'both recipients in one transaction');
});
