/**
 * Child process of the crash test: commits messages from several concurrent writers until killed,
 * printing `<msgid> <index> <evpid> <evpid>` only after each commit has resolved (been acknowledged).
 */
import { closeSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { systemClock } from '../../src/clock.js';
import { configureLog } from '../../src/log.js';
import { Queue } from '../../src/queue/queue.js';
import { createQueueBackend } from '../../src/queue/registry.js';
import { newEnvelope } from './helpers.js';

const [backendName = 'fs', spool] = process.argv.slice(2);
// run without a spool (a test runner given the whole directory runs every .js in it), it would queue into the cwd
if (!spool) {
  process.stderr.write('usage: crash-child.js BACKEND SPOOL\n');
  process.exit(2);
}
const WRITERS = 4;
const MAX_PER_WRITER = 5000;
const DEADLINE = Date.now() + 30_000;

async function writer(q: Queue, w: number): Promise<void> {
  for (let i = 0; i < MAX_PER_WRITER && Date.now() < DEADLINE; i++) {
    const index = `${w}-${i}`;
    const { msgid, path, fd } = await q.create();
  closeSync(fd);
    const body = `crash test ${index}\r\n`;
    await writeFile(path, body);
    const envs = await q.commit(msgid, [newEnvelope(), newEnvelope({ rcpt: 'carol@example.org' })], body.length);
    process.stdout.write(`${msgid} ${index} ${envs.map((e) => e.id).join(' ')}\n`);
  }
}

async function main(): Promise<void> {
  configureLog({ sink: { write: () => {} } });
  const q = new Queue(createQueueBackend(backendName, spool), { spool, clock: systemClock, compression: true });
  await q.open();
  process.stdout.write('ready\n');
  await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(q, w)));
  await q.close();
}

main().catch((err) => {
  process.stderr.write(`crash-child: ${String(err)}\n`);
  process.exit(1);
});
