/**
 * Starting a filter process as its `user`/`group`, in its `chroot`: `/bin/sh -c COMMAND`, as
 * OpenSMTPD runs it. Only a privileged process can switch users, so in the daemon the parent
 * spawns filters and hands their stdin and stdout to the lka (daemon/filter-host.ts); this file
 * is what both sides share: the process shape the lka talks to and the local way of starting one.
 * A filter with no `user` runs as the daemon's unprivileged user, never as root by default.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { ProcessSpec } from '../config/types.js';
import { filterCommandLine, isExecutableFile, libexecDirs } from '../libexec.js';

/** What the lka needs of a filter process: its pipes, its pid, a way to stop it, `exit` and `error` events. */
export interface FilterProcess extends EventEmitter {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable | null;
  readonly pid?: number | undefined;
  kill(signal?: NodeJS.Signals): boolean;
}

export type FilterSpawner = (name: string, spec: ProcessSpec) => FilterProcess;

/** A filter started by this process, talking to it over pipes. */
export const localSpawner: FilterSpawner = (_name, spec) => spawnFilter(spec, {}) as FilterProcess;

/** The identity a filter runs as; undefined fields mean "as this process". */
export interface FilterIdentity {
  uid?: number;
  gid?: number;
}

/**
 * Spawn a filter here. With a chroot, chroot(8) enters it and drops to the identity itself
 * (Node cannot chroot), so the command and its shell must exist inside the chroot — as in
 * OpenSMTPD, whose filter processes chroot before they exec `/bin/sh -c`.
 */
export function spawnFilter(spec: ProcessSpec, id: FilterIdentity, io?: Socket): ChildProcess {
  // `io`: one end of a socket pair as the filter's stdin and stdout (the parent hands the other
  // end to the lka); otherwise pipes to this process
  const stdio: ['pipe' | Socket, 'pipe' | Socket, 'pipe'] = io ? [io, io, 'pipe'] : ['pipe', 'pipe', 'pipe'];
  if (spec.chroot) {
    const userspec = id.uid !== undefined ? [`--userspec=${id.uid}:${id.gid ?? id.uid}`] : [];
    return spawn('chroot', [...userspec, spec.chroot, '/bin/sh', '-c', spec.command], { stdio });
  }
  // `filter-rspamd` runs from OpenSMTPD's filter directory, as smtpd runs it
  const command = filterCommandLine(spec.command, libexecDirs(), isExecutableFile);
  return spawn('/bin/sh', ['-c', command], { stdio, ...(id.uid !== undefined ? { uid: id.uid, gid: id.gid ?? id.uid } : {}) });
}
