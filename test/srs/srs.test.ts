/**
 * SRS: the codec on its own (round trips, SRS1 over SRS0, tampering, age), then through the
 * daemon: a forwarded message leaves with an SRS0 sender at the forwarding domain, and a bounce
 * to that address goes back to the original sender while a forged one is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { srsDecode, srsEncode } from '../../src/srs/srs.js';
import { eventually, sendMessage, startMailHost } from '../harness/mail.js';
import { Sink } from '../mta/sink.js';

const NOW = 1_764_000_000;
const TTL = 4 * 86_400;

test('SRS0 round trip, SRS1 over SRS0, wrong key, expiry', () => {
  const srs0 = srsEncode('alice@orig.test', 'fwd.test', 'k1', NOW);
  assert.match(srs0, /^SRS0=[^=]{4}=[A-Z2-7]{2}=orig\.test=alice@fwd\.test$/);
  assert.deepEqual(srsDecode(srs0, ['k1'], NOW, TTL), { ok: true, address: 'alice@orig.test' });
  assert.deepEqual(srsDecode(srs0, ['old', 'k1'], NOW, TTL), { ok: true, address: 'alice@orig.test' }, 'the backup key');
  assert.equal(srsDecode(srs0, ['k2'], NOW, TTL).ok, false);
  assert.equal(srsDecode(srs0, ['k1'], NOW + 5 * 86_400, TTL).ok, false);
  const srs1 = srsEncode(srs0, 'fwd2.test', 'k2', NOW);
  assert.match(srs1, /^SRS1=[^=]{4}=fwd\.test==/);
  const back = srsDecode(srs1, ['k2'], NOW, TTL);
  assert.deepEqual(back, { ok: true, address: srs0 });
});

test('property: any sender round-trips; any single-character change to the hash is refused', () => {
  fc.assert(fc.property(
    fc.stringMatching(/^[a-z0-9.]{1,20}$/), fc.stringMatching(/^[a-z0-9-]{1,20}\.test$/), fc.integer({ min: 0, max: 3 }),
    (local, domain, i) => {
      const e = srsEncode(`${local}@${domain}`, 'fwd.test', 'key', NOW);
      assert.deepEqual(srsDecode(e, ['key'], NOW, TTL), { ok: true, address: `${local}@${domain}` });
      const h = e.slice(5, 9);
      // the hash is compared case-blind (local parts may be case-folded): change the letter itself
      const flipped = h.slice(0, i) + (h[i]!.toLowerCase() === 'a' ? 'b' : 'a') + h.slice(i + 1);
      assert.equal(srsDecode(e.replace(h, flipped), ['key'], NOW, TTL).ok, false);
    },
  ));
});

test('the daemon rewrites forwarded senders and routes SRS bounces back', async () => {
  const sink = await Sink.start({ host: '127.0.0.5', caps: ['PIPELINING'] });
  const host = await startMailHost({
    aliases: 'fwd: someone@remote.test\n',
    extra: [`srs key "s3cret"`, `action "out" relay host smtp://127.0.0.5:${sink.port} srs`].join('\n'),
    rules: [
      'match from any for domain <domains> action "local"',
      'match from local for any action "out"',
    ].join('\n'),
  });
  try {
    assert.equal((await sendMessage(host.port, 'sender@orig.test', ['fwd@example.test'], 'Subject: fwd\r\n\r\nx')).at(-1)!.code, 250);
    const tx = await eventually(async () => sink.transactions[0], 'the forwarded message');
    const m = /^MAIL FROM:<(SRS0=[^>]+@example\.test)>/.exec(tx.mail);
    assert.ok(m, tx.mail);
    assert.deepEqual(tx.rcpts.map((r) => r.replace(/ .*/, '')), ['RCPT']);
    // the bounce comes back to the SRS address and goes on to the original sender
    assert.equal((await sendMessage(host.port, '', [m[1]!], 'Subject: bounce\r\n\r\nx')).at(-1)!.code, 250);
    const back = await eventually(async () => sink.transactions[1], 'the bounce relayed to the original sender');
    assert.match(back.rcpts[0]!, /^RCPT TO:<sender@orig\.test>/);
    const forged = m[1]!.replace(/^SRS0=(.)/, (_a, c: string) => `SRS0=${c === 'x' ? 'y' : 'x'}`);
    const refused = await sendMessage(host.port, '', [forged], 'x');
    assert.ok(refused.some((r) => /^550 5\.7\.1 Invalid SRS address/.test(r.lines[0]!)), JSON.stringify(refused));
  } finally {
    await host.stop();
    await sink.close();
  }
});
