/** The conformance suite every backend must pass with the same content through the Table front. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir, type Maker } from './helpers.js';

export const CONTENT: [string, string][] = [
  ['root', 'alice, bob@example.org, "|/usr/bin/true"'],
  ['alice', '1000:1000:/home/alice'],
  ['carol', '$2b$10$abcdefghijklmnopqrstuv'],
  ['example.org', 'ok'],
  ['senders', 'alice@example.org, @example.net'],
];

export function conformance(name: string, make: Maker): void {
  test(`${name}: alias, userinfo, credentials, domain and string lookups agree`, async (t) => {
    const dir = await tempDir(t);
    const table = await make(dir, CONTENT);
    t.after(() => table.close());
    assert.deepEqual(await table.lookupAlias('root'), [
      { kind: 'username', value: 'alice' },
      { kind: 'address', value: 'bob@example.org' },
      { kind: 'command', value: '/usr/bin/true' },
    ]);
    assert.equal((await table.lookupAlias('ROOT'))?.length, 3);
    assert.equal(await table.lookupAlias('nobody'), undefined);
    assert.deepEqual(await table.lookupUserinfo('alice'), { username: 'alice', uid: 1000, gid: 1000, directory: '/home/alice' });
    assert.equal(await table.lookupUserinfo('nobody'), undefined);
    assert.deepEqual(await table.lookupCredentials('carol'), { username: 'carol', hash: '$2b$10$abcdefghijklmnopqrstuv' });
    assert.equal(await table.match('domain', 'example.org'), true);
    assert.equal(await table.match('domain', 'EXAMPLE.org'), true);
    assert.equal(await table.match('domain', 'other.org'), false);
    assert.equal(await table.lookupString('string', 'carol'), '$2b$10$abcdefghijklmnopqrstuv');
    await table.update();
    assert.equal(await table.match('domain', 'example.org'), true);
  });
}
