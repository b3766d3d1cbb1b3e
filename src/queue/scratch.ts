/**
 * The spool's scratch directories every queue backend keeps beside its store: incoming/ (bodies
 * under reception) and temporary/ (plain copies for delivery). Nothing in them was acknowledged.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isMsgid } from './envelope.js';

/** Empty both at start; returns how many unfinished messages incoming/ held. */
export async function purgeScratch(incoming: string, temporary: string): Promise<number> {
  let n = 0;
  for (const dir of [incoming, temporary]) {
    for (const name of await readdir(dir)) {
      await rm(join(dir, name), { recursive: true, force: true });
      if (dir === incoming && isMsgid(name)) n++;
    }
  }
  return n;
}
