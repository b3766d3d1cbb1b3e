/**
 * Reading `~/.forward`, which only the parent may do: home directories are often closed to the
 * lka's unprivileged user. The file is used only when it is a regular file (no symbolic link),
 * owned by the user or root, not writable by group or others, and small — what OpenSMTPD's
 * parent_forward_open and secure_file accept. Opened with O_NOFOLLOW and checked on the open
 * descriptor, so it cannot be swapped between the check and the read.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

export const MAX_FORWARD_BYTES = 64 * 1024;

/** The file's text, or null when the user has none; throws (a tempfail) when it is unsafe or unreadable. */
export async function readForwardFile(home: string, uid: number): Promise<string | null> {
  const path = `${home}/.forward`;
  let file;
  try {
    file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new Error(`cannot read ${path}: ${code}`);
  }
  try {
    const st = await file.stat();
    if (!st.isFile() || (st.uid !== uid && st.uid !== 0) || (st.mode & 0o022) !== 0 || st.size > MAX_FORWARD_BYTES) {
      throw new Error(`unsafe ${path}`);
    }
    return await file.readFile('utf8');
  } finally {
    await file.close();
  }
}
