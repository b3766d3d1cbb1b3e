/**
 * The lka's envelopes reach the queue over the lka's link while the commit comes over the
 * worker's: the commit takes them once every accepted recipient's have come, whichever arrives
 * first, and fails (never commits fewer) when they do not come.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StagedEnvelopes } from '../../src/queue/staged.js';
import { envelope } from '../mda/helpers.js';

const e = (rcpt: string) => {
  const { id: _id, msgid: _msgid, ...rest } = envelope({ rcpt });
  return rest;
};

test('envelopes staged before the commit are taken at once; the staging ends with the take', async () => {
  const staged = new StagedEnvelopes();
  staged.open('0a000001', 'smtp.1');
  assert.equal(staged.add('0a000001', 'smtp.2', [e('forged@x.test')]), false, 'another worker\'s message');
  assert.equal(staged.add('0a000001', 'smtp.1', [e('a@x.test'), e('b@x.test')]), true);
  assert.deepEqual((await staged.take('0a000001', 1)).map((x) => x.rcpt), ['a@x.test', 'b@x.test']);
  assert.equal(staged.add('0a000001', 'smtp.1', [e('late@x.test')]), false, 'a committed message takes no more');
});

test('a commit that overtakes the lka waits for the envelopes of every accepted recipient', async () => {
  const staged = new StagedEnvelopes();
  staged.open('0a000002', 'smtp.1');
  staged.add('0a000002', 'smtp.1', [e('a@x.test')]);
  const taking = staged.take('0a000002', 2);
  setTimeout(() => staged.add('0a000002', 'smtp.1', [e('b@x.test')]), 20);
  assert.deepEqual((await taking).map((x) => x.rcpt), ['a@x.test', 'b@x.test']);
});

test('envelopes that never come fail the commit; a dropped message takes none', async () => {
  const staged = new StagedEnvelopes();
  staged.open('0a000003', 'smtp.1');
  await assert.rejects(staged.take('0a000003', 1, 30), /0 of 1 recipients/);
  staged.open('0a000004', 'smtp.1');
  staged.drop('0a000004');
  assert.equal(staged.add('0a000004', 'smtp.1', [e('a@x.test')]), false);
});
