/**
 * The delivery child: started by the mda role as the recipient user (uid/gid set by spawn), it
 * reads one job from its environment and the message from stdin (the daemon streams it, and
 * ends it only once the whole body was read), delivers, and prints the results as one JSON line. Its exit status carries nothing; a crash is read as a tempfail.
 */
import { systemClock } from '../clock.js';
import { splitLines, withPrefix } from './message.js';
import { JOB_ENV, runJob, type ChildTask } from './jobs.js';
import { tempfail } from './results.js';

async function main(): Promise<void> {
  const text = process.env[JOB_ENV];
  if (!text) {
    process.stdout.write(JSON.stringify([tempfail('delivery child started without a job')]) + '\n');
    return;
  }
  const task = JSON.parse(text) as ChildTask;
  // the daemon refuses these before spawning; a child must never write files as root either
  if (process.getuid?.() === 0) {
    process.stdout.write(JSON.stringify([tempfail('delivery child may not run as root')]) + '\n');
    return;
  }
  const prefix = task.prefix.map((l) => Buffer.from(l, 'utf8'));
  const results = await runJob(task.job, withPrefix(prefix, splitLines(process.stdin)), systemClock);
  process.stdout.write(JSON.stringify(results) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`deliver-child: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
