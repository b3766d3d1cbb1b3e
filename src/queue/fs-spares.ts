/**
 * Files of delivered messages kept for the next ones (`spare/`), so that the usual message neither
 * allocates an inode and its blocks when it arrives nor frees them when it leaves. Both cost far
 * more than the rename that replaces them: the inode allocator can scan many block groups of a
 * well-used ext4 (0.3-0.9 ms of system time per create was measured on this project's machine),
 * and freeing blocks on a filesystem mounted with `discard` waits for the device. A new message
 * overwrites a spare from its first octet; its commit cuts what is left of the old content
 * (fs.ts, seal()).
 *
 * A spare is taken by link() under the incoming name, which fails when that name exists, as the
 * exclusive create would; then its spare name is unlinked, which frees nothing while the other
 * name holds the inode. The renames are not fsynced, as deletions are not: a crash may bring a
 * delivered message back (a duplicate, never a loss). A file that came back with another
 * message's bytes is never delivered as that message: the envelopes in a message file must carry
 * its msgid (fs.ts, read()).
 */
import { linkSync, lstatSync, openSync, readdirSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { isMsgid } from './envelope.js';

/** Enough for every message in flight on a busy server; beyond it files are unlinked as before. */
export const MAX_SPARES = 256;
/** A larger file is unlinked: a spare should not hold much disk, and a big file's blocks would be freed on reuse anyway. */
export const MAX_SPARE_OCTETS = 256 * 1024;

export class SparePool {
  /** Names in spare/, the most recently freed last (its inode is likeliest still cached). */
  private readonly names: string[] = [];
  private readonly known = new Set<string>();

  constructor(readonly dir: string) {}

  /**
   * Adopt what a previous run left in spare/, and unlink what is over the cap or is not ours. A
   * spare must be its file's only name: one with another name (a queued message's file, which a
   * new message would then overwrite) loses the spare name.
   */
  load(): void {
    for (const name of readdirSync(this.dir).sort()) {
      const path = join(this.dir, name);
      if (isMsgid(name) && this.names.length < MAX_SPARES && soleFile(path)) this.add(name);
      else unlinkQuietly(path);
    }
  }

  /**
   * Keep a leaving message's file (renamed out of the queue) instead of unlinking it. False when
   * the pool is full, the file too large or the rename impossible: the caller unlinks it. Throws
   * ENOENT when the file is gone.
   */
  keep(path: string, name: string, octets: number): boolean {
    if (this.names.length >= MAX_SPARES || octets > MAX_SPARE_OCTETS || this.known.has(name)) return false;
    try {
      renameSync(path, join(this.dir, name));
    } catch (err) {
      // a file already gone is the caller's to know; any other failure (spare/ elsewhere: EXDEV) leaves it to unlink
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw err;
      return false;
    }
    this.add(name);
    return true;
  }

  /**
   * A spare, under `path` and open for writing at its first octet, or null when there is none.
   * Throws EEXIST when `path` exists (the spare stays in the pool).
   */
  take(path: string): number | null {
    while (this.names.length > 0) {
      const name = this.names[this.names.length - 1]!;
      const from = join(this.dir, name);
      try {
        linkSync(from, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw err;
        // gone (removed by hand) or unusable: forget it and try the next
        this.drop(name);
        unlinkQuietly(from);
        continue;
      }
      this.drop(name);
      try {
        // the spare name must go: left beside the new message, it would be taken again after a restart
        unlinkSync(from);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
          unlinkQuietly(path);
          continue;
        }
      }
      try {
        return openSync(path, 'r+');
      } catch (err) {
        unlinkQuietly(path);
        throw err;
      }
    }
    return null;
  }

  private add(name: string): void {
    this.names.push(name);
    this.known.add(name);
  }

  private drop(name: string): void {
    this.names.pop();
    this.known.delete(name);
  }
}

/** A regular file with one name only (false when it is gone). */
function soleFile(path: string): boolean {
  try {
    const st = lstatSync(path);
    return st.isFile() && st.nlink === 1;
  } catch {
    return false;
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}
