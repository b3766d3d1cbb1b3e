/** The proc backend under failure: stalls and deaths become tempfail errors, and the next use restarts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openTable } from '../../src/table/table.js';
import { TableError } from '../../src/table/types.js';
import { procCommand, tempDir } from './helpers.js';

const tempfail = (e: unknown) => e instanceof TableError && e.tempfail;

test('a stalled lookup fails as tempfail within the timeout and the next lookup works', async (t) => {
  const dir = await tempDir(t);
  const table = await openTable({ name: 'p', backend: 'proc', config: await procCommand(dir, [['alice', '1:2:/h']]) }, { timeoutMs: 500 });
  t.after(() => table.close());
  await assert.rejects(table.lookupString('string', 'stall'), tempfail);
  assert.deepEqual(await table.lookupUserinfo('alice'), { username: 'alice', uid: 1, gid: 2, directory: '/h' });
});

test('a child that dies mid-request gives tempfail and is restarted on next use', async (t) => {
  const dir = await tempDir(t);
  const table = await openTable({ name: 'p', backend: 'proc', config: await procCommand(dir, [['example.org', 'x'], ['192.0.2.1', '']]) }, { timeoutMs: 3000 });
  t.after(() => table.close());
  await assert.rejects(table.match('domain', 'die'), tempfail);
  assert.equal(await table.match('domain', 'example.org'), true);
  assert.equal(await table.fetchSource(), '192.0.2.1');
});

test('keys with CR or LF are refused before reaching the child', async (t) => {
  const dir = await tempDir(t);
  const table = await openTable({ name: 'p', backend: 'proc', config: await procCommand(dir, []) }, { timeoutMs: 3000 });
  t.after(() => table.close());
  await assert.rejects(table.lookupString('string', 'a\nb'), /CR or LF/);
  assert.equal(await table.lookupString('string', 'absent'), undefined);
});

test('a child that exits, never handshakes, or registers nothing fails open with tempfail', async () => {
  for (const config of ['exit 3', 'sleep 30', 'read a; read b; read c; read d; echo register\\|ready; sleep 30', 'echo register\\|bogus; sleep 30']) {
    await assert.rejects(openTable({ name: 'p', backend: 'proc', config }, { timeoutMs: 400 }), tempfail, config);
  }
});
