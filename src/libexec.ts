/**
 * OpenSMTPD's libexec directory, where its filters (`filter-rspamd`) and table helpers
 * (`table-postgres`) are installed: a `proc-exec` command that does not start with `/` runs from
 * there (smtpd.c fork_filter_process() runs `exec PATH_LIBEXEC/command`), and an unknown table
 * backend NAME is the helper `table-NAME` there (table.c table_create()). Debian puts it at
 * /usr/libexec/opensmtpd, a source build at /usr/local/libexec/opensmtpd, OpenBSD at
 * /usr/libexec/smtpd; `TSMTPD_LIBEXEC` (colon-separated) replaces the list.
 *
 * The lookups are pure functions over a directory list and an `isExecutable` test; the last
 * lines bind them to the real file system.
 */
import { accessSync, constants, statSync } from 'node:fs';

export const DEFAULT_LIBEXEC_DIRS = ['/usr/libexec/opensmtpd', '/usr/local/libexec/opensmtpd', '/usr/libexec/smtpd', '/usr/local/libexec/smtpd'];

export type IsExecutable = (path: string) => boolean;

export function libexecDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const list = env.TSMTPD_LIBEXEC?.split(':').filter((d) => d.startsWith('/'));
  return list?.length ? list : DEFAULT_LIBEXEC_DIRS;
}

/** The first `dir/program` that is an executable file, if any. */
export function findProgram(program: string, dirs: readonly string[], isExecutable: IsExecutable): string | undefined {
  if (!/^[A-Za-z0-9._+-]+$/.test(program) || program.startsWith('.')) return undefined;
  return dirs.map((d) => `${d.replace(/\/+$/, '')}/${program}`).find(isExecutable);
}

/**
 * The command line a filter process runs with `/bin/sh -c`: a command starting with `/` as it is;
 * one whose first word names a program of the libexec directory, from there (`filter-rspamd -url
 * ...` becomes `/usr/libexec/opensmtpd/filter-rspamd -url ...`); any other through the shell's
 * PATH, where smtpd would fail (it knows no PATH): tsmtpd's own configs run `node filter.js`.
 */
export function filterCommandLine(command: string, dirs: readonly string[], isExecutable: IsExecutable): string {
  const text = command.trimStart();
  if (text.startsWith('/')) return command;
  const first = /^[^\s]+/.exec(text)?.[0] ?? '';
  const found = findProgram(first, dirs, isExecutable);
  return found ? found + text.slice(first.length) : command;
}

/** The helper program of an external table backend (`postgres` → `.../table-postgres`). */
export function tableHelper(backend: string, dirs: readonly string[], isExecutable: IsExecutable): string | undefined {
  return findProgram(`table-${backend}`, dirs, isExecutable);
}

export const isExecutableFile: IsExecutable = (path) => {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};
