/** Control commands resolve by unique prefix, as smtpctl's do, and check their argument counts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveCommand, type ControlCommand } from '../../src/control/commands.js';
import { decodeRequest, LineSplitter } from '../../src/control/protocol.js';
import { formatStats, monitorRow, statName } from '../../src/control/format.js';

const noop = async () => null;
const table: ControlCommand[] = [
  { words: ['show', 'stats'], args: { min: 0, max: 0, names: '' }, handler: noop },
  { words: ['show', 'status'], args: { min: 0, max: 0, names: '' }, handler: noop },
  { words: ['show', 'queue'], args: { min: 0, max: 1, names: '[msgid]' }, handler: noop },
  { words: ['schedule'], args: { min: 1, max: 1, names: '<evpid|msgid|all>' }, handler: noop },
  { words: ['pause', 'smtp'], args: { min: 0, max: 0, names: '' }, handler: noop },
];

function words(r: ReturnType<typeof resolveCommand>) {
  return 'error' in r ? r.error : [...r.command.words, '|', ...r.args].join(' ');
}

test('unique prefixes resolve; ambiguous and unknown ones are named', () => {
  assert.equal(words(resolveCommand(table, ['sh', 'stats'])), 'show stats |');
  assert.equal(words(resolveCommand(table, ['show', 'q', '0badcafe'])), 'show queue | 0badcafe');
  assert.equal(words(resolveCommand(table, ['sch', 'all'])), 'schedule | all');
  assert.match(words(resolveCommand(table, ['show', 'sta'])), /ambiguous command: show sta \(stats, status\)/);
  assert.match(words(resolveCommand(table, ['frobnicate'])), /unknown command: frobnicate/);
  assert.match(words(resolveCommand(table, ['show'])), /incomplete command/);
  assert.match(words(resolveCommand(table, ['schedule'])), /usage: schedule <evpid\|msgid\|all>/);
  assert.match(words(resolveCommand(table, ['pause', 'smtp', 'extra'])), /usage: pause smtp/);
});

test('requests are versioned and malformed lines are errors, not throws', () => {
  assert.deepEqual(decodeRequest('{"v":1,"id":3,"words":["show","stats"]}'), { v: 1, id: 3, words: ['show', 'stats'] });
  assert.match((decodeRequest('{"v":2,"id":3,"words":[]}') as { error: string }).error, /version mismatch/);
  assert.match((decodeRequest('{nope') as { error: string }).error, /malformed/);
  assert.match((decodeRequest('{"v":1,"id":"x","words":[]}') as { error: string }).error, /malformed/);
  const split = new LineSplitter(10);
  assert.deepEqual(split.push('ab\ncd'), ['ab']);
  assert.deepEqual(split.push('e\n'), ['cde']);
  assert.equal(split.push('x'.repeat(11)), null);
});

test('stats print as key=value with labels in braces, then uptime', () => {
  const out = formatStats({ uptime: 90061, stats: [
    { key: 'smtp.session', labels: {}, value: 2 },
    { key: 'mta.delivery', labels: { domain: 'b.example' }, value: 5 },
  ] });
  assert.equal(out, 'smtp.session=2\nmta.delivery{domain="b.example"}=5\nuptime=90061\nuptime.human=1 days, 01:01:01\n');
  assert.equal(statName({ key: 'k', labels: { b: '1', a: '2' } }), 'k{a="2",b="1"}');
});

test('monitor rows show levels as they are and counters as deltas', () => {
  const before = new Map([['smtp.session.total', 10], ['scheduler.delivery.ok', 4]]);
  const now = new Map([['smtp.session', 3], ['smtp.session.total', 15], ['scheduler.delivery.ok', 7]]);
  const row = monitorRow(now, before).trim().split(/\s+/).map(Number);
  assert.deepEqual(row, [3, 5, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0]);
});
