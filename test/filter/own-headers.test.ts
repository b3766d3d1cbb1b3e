/**
 * Issue 15 item 7: the daemon's own header lines pass through data-line filters as OpenSMTPD's
 * smtp_message_begin() writes them, with smtp_filter_printf() when the message is filtered:
 * `X-Spam: Yes` (for a message a filter marked as junk) first, then Received:, as the first lines
 * of the data-line stream, before the client's own. A filter that signs or scans the message sees
 * what is stored.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually, sendMessage, startMailHost, type MailHost } from '../harness/mail.js';
import { peerSkip } from '../harness/peers.js';

const RECORDER = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/filters/recorder.py');

describe('the daemon\'s own header lines and data-line filters', { skip: peerSkip('python3') }, () => {
  let host: MailHost;
  let seen: string;

  before(async () => {
    host = await startMailHost({
      listen: false,
      extra: [
        `filter "recorder" proc-exec "/usr/bin/python3 ${RECORDER} %DIR%/scratch/seen"`,
        'listen on 127.0.0.1 port %PORT% hostname mx.example.test filter "recorder"',
      ].join('\n'),
    });
    seen = join(host.dir, 'scratch', 'seen');
  });
  after(() => host?.stop());

  it('X-Spam: Yes, then Received:, are the first lines the filter is given, and are stored as it returns them', async () => {
    const r = await sendMessage(host.port, 's@client.test', ['alice@example.test'], 'Subject: own-headers\r\n\r\nhello');
    assert.equal(r.at(-1)!.code, 250, JSON.stringify(r));
    const lines = (await readFile(seen, 'utf8')).split('\n');
    assert.equal(lines[0], 'X-Spam: Yes');
    assert.match(lines[1]!, /^Received: from client\.example\.test /);
    const subject = lines.indexOf('Subject: own-headers');
    assert.ok(subject > 1 && lines.slice(1, subject).every((l) => l.startsWith('Received:') || /^\s/.test(l)), lines.join('\n'));
    const msg = await eventually(async () => (await host.maildir('alice'))[0], 'delivery');
    assert.match(msg, /^Delivered-To: alice@example\.test\nX-Spam: Yes\nReceived: from client\.example\.test /m);
    assert.equal(msg.match(/^Received:/gm)?.length, 1);
  });
});
