/**
 * Durability under SIGKILL: a child commits in a loop and prints each acknowledged msgid; we kill
 * it mid-run, reopen the queue, and every acknowledged envelope and body must be there, whole.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createQueueBackend } from '../../src/queue/registry.js';
import { collect, logged, makeQueue, tempDir } from './helpers.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'crash-child.js');
const WANT = 60;

/** Run the child until it has acknowledged WANT commits (or 20 s pass), then SIGKILL it. */
function runAndKill(backend: string, spool: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, backend, spool], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const kill = () => child.kill('SIGKILL');
    const timer = setTimeout(kill, 20_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.split('\n').length > WANT + 1) kill();
    });
    child.stderr.on('data', (d: Buffer) => void (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      clearTimeout(timer);
      if (signal !== 'SIGKILL') return reject(new Error(`child ended without being killed: ${err}`));
      // only complete lines were acknowledged; a torn last line is dropped
      resolve(out.split('\n').slice(0, -1).filter((l) => l !== 'ready'));
    });
  });
}

for (const backend of ['fs', 'sqlite']) {
  test(`${backend}: every commit acknowledged before SIGKILL is in the queue after restart`, async (t) => {
    const { dir, cleanup } = await tempDir(`tsmtpd-crash-${backend}-`);
    t.after(cleanup);
    const lines = await runAndKill(backend, dir);
    assert.ok(lines.length >= 10, `only ${lines.length} commits before the kill`);
    const q = makeQueue(createQueueBackend(backend, dir), dir, { compression: true });
    await q.open();
    t.after(() => q.close());
    const before = logged.length;
    const ids = new Set((await collect(q.walk())).map((e) => e.id));
    for (const line of lines) {
      const [msgid, index, ...evpids] = line.split(' ');
      assert.equal(evpids.length, 2, `line ${line}`);
      for (const id of evpids) assert.ok(ids.has(id), `acknowledged ${id} lost`);
      const h = await q.body(msgid!);
      assert.equal(await readFile(h.path, 'utf8'), `crash test ${index}\r\n`);
      await h.release();
    }
    assert.deepEqual(logged.slice(before).filter((l) => l.includes('queue-damaged')), []);
  });
}
