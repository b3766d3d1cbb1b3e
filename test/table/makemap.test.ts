/** makemap end to end: build a db, look it up through the db backend, dump it with -U, report errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openTable } from '../../src/table/table.js';
import { tempDir } from './helpers.js';

const MAKEMAP = fileURLToPath(new URL('../../src/bin/makemap.js', import.meta.url));

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAKEMAP, ...args], { timeout: 20000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('makemap -t aliases builds a db the db backend reads, and -U dumps it back', async (t) => {
  const dir = await tempDir(t);
  const src = join(dir, 'aliases');
  await writeFile(src, '# aliases\nroot: alice, |/usr/bin/true\nPostmaster  root\n');
  const r = await run(['-t', 'aliases', '-o', join(dir, 'aliases.db'), src]);
  assert.deepEqual(r, { code: 0, stdout: '', stderr: '' });
  assert.deepEqual((await readdir(dir)).sort(), ['aliases', 'aliases.db']);
  const table = await openTable({ name: 'a', backend: 'db', config: join(dir, 'aliases.db') });
  assert.deepEqual(await table.lookupAlias('postmaster'), [{ kind: 'username', value: 'root' }]);
  assert.equal((await table.lookupAlias('root'))?.length, 2);
  const dump = await run(['-U', join(dir, 'aliases.db')]);
  assert.equal(dump.code, 0);
  assert.equal(dump.stdout, 'root\talice, |/usr/bin/true\npostmaster\troot\n');
});

test('makemap -t set writes a list with the default name; bad input gives file:line and exit 1', async (t) => {
  const dir = await tempDir(t);
  const src = join(dir, 'set');
  await writeFile(src, 'a.test\nb.test\n');
  assert.equal((await run(['-t', 'set', src])).code, 0);
  const table = await openTable({ name: 's', backend: 'db', config: `${src}.db` });
  assert.equal(await table.match('domain', 'B.test'), true);
  const bad = join(dir, 'bad');
  await writeFile(bad, 'root alice\nx error:999 nope\n');
  const r = await run(['-t', 'aliases', bad]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`^${bad}:2: invalid alias target: error:999`));
  assert.equal((await readdir(dir)).includes('bad.db'), false);
  assert.equal((await run(['-t', 'bogus', src])).code, 1);
  assert.equal((await run(['-U', join(dir, 'absent.db')])).code, 1);
});
