/**
 * Replies to a pipelined group leave in one write (RFC 2920 §3.1 lets the server hold them until
 * the group is answered), even when each command waits on the lka: MAIL, two RCPTs and DATA sent
 * in one packet come back as one segment carrying 250, 250, 250 and 354.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import { startSmtpRole } from '../harness/smtp-role.js';

test('the replies to MAIL, RCPT, RCPT and DATA sent together arrive in one read', async (t) => {
  // each lka answer takes a few milliseconds: without batching, each reply would be its own packet
  const smtp = await startSmtpRole({ listeners: [{}], delay: () => 5 });
  t.after(() => smtp.stop());
  const socket = connect(smtp.ports[0]!, '127.0.0.1');
  t.after(() => socket.destroy());
  const chunks: string[] = [];
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => chunks.push(d));
  const until = async (pattern: RegExp) => {
    for (let i = 0; i < 500 && !pattern.test(chunks.join('')); i++) await new Promise((r) => setTimeout(r, 10));
  };
  await once(socket, 'connect');
  await until(/^220 /m);
  socket.write('EHLO client.test\r\n');
  await until(/^250 /m);
  chunks.length = 0;
  socket.write('MAIL FROM:<a@client.test>\r\nRCPT TO:<b@example.test>\r\nRCPT TO:<c@example.test>\r\nDATA\r\n');
  await until(/^354 /m);
  assert.equal(chunks.length, 1, `one segment, got ${JSON.stringify(chunks)}`);
  assert.deepEqual(chunks[0]!.split('\r\n').filter(Boolean).map((l) => l.slice(0, 3)), ['250', '250', '250', '354']);
});
