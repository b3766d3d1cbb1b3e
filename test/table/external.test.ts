/**
 * An unknown table backend NAME is the helper `table-NAME` of OpenSMTPD's libexec directory, run
 * as smtpd's table_create() and fork_proc_backend() run it: the part after `NAME:` is its one
 * argument, and it speaks smtpd-tables(7). No helper: a clear error, never a fallback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { externalHelper } from '../../src/table/registry.js';
import { openTable } from '../../src/table/table.js';
import { FIXTURES, tempDir } from './helpers.js';

async function libexec(dir: string): Promise<string> {
  const bin = join(dir, 'libexec');
  await mkdir(bin);
  const helper = join(bin, 'table-kv');
  await writeFile(helper, `#!/bin/sh\nexec '${process.execPath}' '${join(FIXTURES, 'table.mjs')}' "$@"\n`);
  await chmod(helper, 0o755);
  await writeFile(join(bin, 'table-noexec'), '');
  return bin;
}

test('table NAME kv:/path runs DIR/table-kv /path and answers through it', async (t) => {
  const dir = await tempDir(t);
  const bin = await libexec(dir);
  const data = join(dir, 'data.json');
  await writeFile(data, JSON.stringify({ alice: '2000:2000:/var/vmail/alice', 'example.org': '' }));
  const saved = process.env.TSMTPD_LIBEXEC;
  process.env.TSMTPD_LIBEXEC = `/nonexistent:${bin}`;
  t.after(() => { if (saved === undefined) delete process.env.TSMTPD_LIBEXEC; else process.env.TSMTPD_LIBEXEC = saved; });
  const table = await openTable({ name: 'users', backend: 'kv', config: data }, { timeoutMs: 3000 });
  t.after(() => table.close());
  assert.deepEqual(await table.lookupUserinfo('alice'), { username: 'alice', uid: 2000, gid: 2000, directory: '/var/vmail/alice' });
  assert.equal(await table.match('domain', 'example.org'), true);
  assert.deepEqual(externalHelper('kv', [bin]), { path: join(bin, 'table-kv') });
});

test('no executable table-NAME in any libexec directory: the error names them all', async (t) => {
  const bin = await libexec(await tempDir(t));
  assert.deepEqual(externalHelper('postgres', [bin, '/nonexistent']), { error: `backend "postgres" does not exist: no table-postgres in ${bin}, /nonexistent` });
  assert.ok('error' in externalHelper('noexec', [bin]), 'a file that is not executable is no helper');
  assert.ok('error' in externalHelper('../kv', [bin]), 'a backend name is no path');
});
