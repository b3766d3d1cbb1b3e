/**
 * Spools written by tsmtpd before the one-file-per-message layout kept a directory per message,
 * queue/<XX>/<msgid>/ holding `message` and one file per envelope. At open, each becomes one
 * message file (body, envelope block, trailer) made durable before its directory is removed, so
 * an upgrade loses nothing even if it is interrupted: an unfinished conversion is redone.
 */
import { copyFile, open, readdir, readFile, rename, rm, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { syncHandle, writeAll, type Durable } from './durable.js';
import type { RecordCodec } from './record-codec.js';
import { isEvpid, isMsgid, type Envelope } from './envelope.js';
import { encodeRecords, trailer } from './fs-format.js';

const BUCKET = /^[0-9a-f]{2}$/;

export async function migrateBucketLayout(queue: string, incoming: string, durable: Durable, records: RecordCodec): Promise<number> {
  let migrated = 0;
  for (const bucket of (await readdir(queue)).filter((b) => BUCKET.test(b))) {
    const dir = join(queue, bucket);
    if (!(await stat(dir)).isDirectory()) continue;
    for (const msgid of (await readdir(dir)).filter(isMsgid)) {
      if (await migrateMessage(join(dir, msgid), msgid, queue, incoming, durable, records)) migrated++;
    }
    // empty once every message in it is converted; a damaged leftover keeps it for the operator
    await rmdir(dir).catch(() => {});
  }
  return migrated;
}

async function migrateMessage(dir: string, msgid: string, queue: string, incoming: string, durable: Durable, records: RecordCodec): Promise<boolean> {
  const envelopes: Envelope[] = [];
  for (const name of (await readdir(dir)).filter(isEvpid).sort()) {
    const d = records.decode(await readFile(join(dir, name)), name);
    // a record that does not decode stays behind in the old directory, for the operator
    if (d.ok) envelopes.push(d.envelope);
  }
  const body = join(dir, 'message');
  if (envelopes.length === 0 || !(await stat(body).then(() => true, () => false))) return false;
  const tmp = join(incoming, `${msgid}.migrate`);
  await copyFile(body, tmp);
  const fh = await open(tmp, 'r+');
  try {
    const { size } = await fh.stat();
    const block = encodeRecords(envelopes, records);
    await writeAll(fh, Buffer.concat([block, trailer(size, block.length)]), size);
    await syncHandle(durable, fh);
  } finally {
    await fh.close();
  }
  await rename(tmp, join(queue, msgid));
  await durable.fsyncDir(queue);
  await rm(dir, { recursive: true, force: true });
  return true;
}
