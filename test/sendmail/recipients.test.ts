/** `sendmail -t`: recipients from To, Cc and Bcc, and the header section recipients see, without Bcc. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { addressesIn, qualify, recipientsFromHeaders, senderFromHeaders, splitHeaders, withoutBcc } from '../../src/sendmail/recipients.js';

const HEADERS = [
  'From: Me <me@here.example>',
  'To: a@x.example, "Doe, John" <john@x.example>',
  'cc: team: b@x.example, c@x.example;,',
  ' (folded) d@x.example',
  'BCC: secret@y.example,',
  '\tsecret2@y.example',
  'Subject: To: notme@x.example',
  'Resent-To: resent@x.example',
  '',
  'To: body@x.example',
].join('\n');

test('To, Cc and Bcc (any case, folded) give the recipients, in order and once', () => {
  assert.deepEqual(recipientsFromHeaders(HEADERS, 'host.test'), [
    'a@x.example', 'john@x.example', 'b@x.example', 'c@x.example', 'd@x.example', 'secret@y.example', 'secret2@y.example',
  ]);
  assert.deepEqual(recipientsFromHeaders('To: a@x\r\nCc: a@x, b@x\r\n', 'host.test'), ['a@x', 'b@x']);
  assert.deepEqual(recipientsFromHeaders('Subject: none\n', 'host.test'), []);
  // two addresses without a comma are not an address list: neither is guessed at
  assert.deepEqual(recipientsFromHeaders('To: a@x b@x\n', 'host.test'), []);
});

test('address lists: display names, comments, groups, empty groups, junk', () => {
  assert.deepEqual(addressesIn('Name <a@b>'), ['a@b']);
  assert.deepEqual(addressesIn('"Quoted, Comma" <a@b>, c@d'), ['a@b', 'c@d']);
  assert.deepEqual(addressesIn('a@b (the, comment), (x) c@d'), ['a@b', 'c@d']);
  assert.deepEqual(addressesIn('friends: a@b, c@d;, e@f'), ['a@b', 'c@d', 'e@f']);
  assert.deepEqual(addressesIn('undisclosed-recipients:;'), []);
  assert.deepEqual(addressesIn('not an address, @nolocal, nodomain@, a b@c'), []);
  assert.deepEqual(addressesIn('"unterminated <a@b>'), []);
  assert.deepEqual(addressesIn('(unclosed a@b'), []);
});

test('the header section without Bcc keeps everything else, folds included', () => {
  assert.equal(withoutBcc(HEADERS), [
    'From: Me <me@here.example>',
    'To: a@x.example, "Doe, John" <john@x.example>',
    'cc: team: b@x.example, c@x.example;,',
    ' (folded) d@x.example',
    'Subject: To: notme@x.example',
    'Resent-To: resent@x.example',
  ].join('\n'));
  assert.doesNotMatch(withoutBcc('Bcc: x@y\r\nTo: a@b\r\n'), /x@y/);
});

test('splitHeaders: continuation lines join their header; a leading fold or a colonless line is dropped', () => {
  const h = splitHeaders(' orphan\nNoColon\nTo: a@b,\n c@d\n\nCc: after@blank');
  assert.deepEqual(h, [{ name: 'to', raw: 'To: a@b,\n c@d', value: 'a@b, c@d' }]);
});

test('property: no header text makes -t throw, and Bcc never survives', () => {
  const piece = fc.constantFrom('To: ', 'Bcc: ', 'bcc:', 'Cc: ', ' ', '\t', '\n', '\r\n', 'a@b', '<', '>', '"', '(', ')', ',', ';', ':', 'x');
  fc.assert(
    fc.property(fc.string({ unit: piece, maxLength: 40 }), (text) => {
      for (const r of recipientsFromHeaders(text, 'host.test')) assert.match(r, /^[^\s@<>]+@[^\s@<>]+$/);
      assert.ok(splitHeaders(withoutBcc(text)).every((h) => h.name !== 'bcc'));
    }),
    { numRuns: 2000 },
  );
});

test('bare names are local users: qualified with the server\'s name (enqueue.c qualify_addr); From: gives the sender', () => {
  assert.deepEqual(recipientsFromHeaders('To: bob, Alice <alice>, c@x.example\nCc: "Root" <root>\n', 'host.test'),
    ['bob@host.test', 'alice@host.test', 'c@x.example', 'root@host.test']);
  assert.equal(qualify('', 'host.test'), '', 'the null sender stays null');
  assert.equal(qualify('a@b', 'host.test'), 'a@b');
  assert.equal(senderFromHeaders('Subject: x\nFrom: root (Cron Daemon)\n', 'host.test'), 'root@host.test');
  assert.equal(senderFromHeaders('From: A <a@x.example>\nFrom: b@y.example\n', 'host.test'), 'b@y.example');
  assert.equal(senderFromHeaders('To: bob\n', 'host.test'), undefined);
});
