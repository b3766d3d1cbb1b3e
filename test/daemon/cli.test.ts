/** The command-line contract of tsmtpd: flags, macros, backend choices and usage errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCli, UsageError } from '../../src/daemon/cli.js';

test('flags of smtpd(8) plus --spool', () => {
  const o = parseCli(['-d', '-v', '-v', '-f', 'x.conf', '-D', 'a=b', '-D', 'c=d=e', '--spool', '/tmp/s', '-B', 'queue=sqlite']);
  assert.equal(o.foreground, true);
  assert.equal(o.verbose, 2);
  assert.equal(o.configFile, 'x.conf');
  assert.deepEqual(o.macros, { a: 'b', c: 'd=e' });
  assert.equal(o.spool, '/tmp/s');
  assert.deepEqual(o.backends, { queue: 'sqlite', scheduler: 'ramqueue', stat: 'ram' });
  assert.equal(o.checkOnly, false);
});

test('defaults: fs queue, ramqueue scheduler, ram stat', () => {
  const o = parseCli(['-n']);
  assert.equal(o.checkOnly, true);
  assert.deepEqual(o.backends, { queue: 'fs', scheduler: 'ramqueue', stat: 'ram' });
});

test('usage errors', () => {
  assert.throws(() => parseCli(['-x']), UsageError);
  assert.throws(() => parseCli(['-D', 'novalue']), /NAME=VALUE/);
  assert.throws(() => parseCli(['-B', 'mta=x']), /unknown backend kind mta/);
  assert.throws(() => parseCli(['-B', 'queue=nosuch']), /unknown queue backend nosuch \(fs, sqlite, ram, postgres\)/);
  assert.throws(() => parseCli(['stray']), UsageError);
});

test('-B queue=postgres brings the shared scheduler; a shared queue with a node-local scheduler is refused', () => {
  assert.deepEqual(parseCli(['-B', 'queue=postgres']).backends, { queue: 'postgres', scheduler: 'postgres', stat: 'ram' });
  assert.throws(() => parseCli(['-B', 'queue=postgres', '-B', 'scheduler=ramqueue']), /go together/);
  assert.throws(() => parseCli(['-B', 'scheduler=postgres']), /go together/);
});
