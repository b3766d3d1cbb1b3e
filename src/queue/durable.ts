/**
 * The few durable-write primitives the disk backends share, counting fsyncs (the bench reports
 * them) and calling an optional fault hook before every write step, so tests can make any step
 * fail as a full disk would.
 */
import { closeSync, fsync, fsyncSync, writeSync } from 'node:fs';
import { promisify } from 'node:util';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';

/** Called with a step name before each write; throwing from it simulates that step failing. */
export type FaultHook = (step: string) => void;

export class Durable {
  fsyncs = 0;
  constructor(private readonly fault: FaultHook = () => {}) {}

  step(name: string): void {
    this.fault(name);
  }

  /** fsync a file; returns its size as stored, for the caller to check against what was written. */
  fsyncFile(path: string): Promise<number> {
    return this.sync(path, 'fsync-file');
  }

  /** A directory's fsync is what makes a create, rename or unlink inside it survive a crash. */
  async fsyncDir(path: string): Promise<void> {
    await this.sync(path, 'fsync-dir');
  }

  private async sync(path: string, step: string): Promise<number> {
    this.step(step);
    const fh = await open(path, 'r');
    try {
      await fh.sync();
      this.fsyncs++;
      return (await fh.stat()).size;
    } finally {
      await fh.close();
    }
  }

  /** Create the directories that do not exist yet; their parent is fsynced when one was, so the new entries survive a crash. */
  async mkdirs(parent: string, dirs: Iterable<string>): Promise<void> {
    let created = false;
    for (const d of dirs) {
      this.step('mkdir');
      try {
        await mkdir(d, { mode: 0o700 });
        created = true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    if (created) await this.fsyncDir(parent);
  }

  /** Write a whole file and fsync it (the caller fsyncs the directory). */
  async writeFile(path: string, data: string | Uint8Array): Promise<void> {
    this.step('write');
    const fh = await open(path, 'wx', 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
      this.fsyncs++;
    } finally {
      await fh.close();
    }
  }

  /** Replace a file atomically: temp file, fsync, rename over, fsync the directory. */
  async replaceFile(path: string, tmp: string, dir: string, data: string | Uint8Array): Promise<void> {
    await rm(tmp, { force: true });
    await this.writeFile(tmp, data);
    this.step('rename');
    await rename(tmp, path);
    await this.fsyncDir(dir);
  }
}

/** Write all of `data` at `position`, resuming short writes. */
export async function writeAll(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  for (let off = 0; off < data.length;) {
    const { bytesWritten } = await fh.write(data, off, data.length - off, position + off);
    if (bytesWritten <= 0) throw new Error('write made no progress');
    off += bytesWritten;
  }
}

/**
 * Write all of `data` at `position` on the loop, resuming short writes: the small writes of a
 * commit cost less as plain syscalls than as trips through the thread pool (the fsync stays async).
 */
export function writeAllSync(fd: number, data: Buffer, position: number): void {
  for (let off = 0; off < data.length;) {
    const n = writeSync(fd, data, off, data.length - off, position + off);
    if (n <= 0) throw new Error('write made no progress');
    off += n;
  }
}

const fsyncAsync = promisify(fsync);

/** fsync a file by its descriptor, off the loop; counted like the others. */
export async function syncFd(durable: Durable, fd: number): Promise<void> {
  durable.step('fsync-file');
  await fsyncAsync(fd);
  durable.fsyncs++;
}

/**
 * fsync a file by its descriptor on the loop: for a commit of one message, the thread pool's trip
 * (a wake-up of a pool thread, then of the loop) costs more than the loop's wait.
 */
export function syncFdNow(durable: Durable, fd: number): void {
  durable.step('fsync-file');
  fsyncSync(fd);
  durable.fsyncs++;
}

/** fsync an open file through its descriptor (no second open); counted like the others. */
export async function syncHandle(durable: Durable, fh: FileHandle): Promise<void> {
  durable.step('fsync-file');
  await fh.sync();
  durable.fsyncs++;
}

/** A descriptor closed where nothing rides on the close any more. */
export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // nothing to do: the file's fate was decided before
  }
}
