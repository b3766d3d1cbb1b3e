/**
 * The parent's side of filter processes: the lka asks (over the IPC channel, since the answer
 * carries a descriptor) for a filter to be started; the parent resolves its `user`/`group`
 * (default: the daemon's unprivileged user; root only when configured so), starts it with one
 * end of a socket pair as its stdin and stdout, hands the other end to the lka, logs its
 * stderr, and reports its exit. The parent never reads the filter's output itself: both ends
 * stay paused until the lka owns its end. The lka may ask for its filters to be killed.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Socket } from 'node:net';
import type { ProcessSpec } from '../config/types.js';
import { spawnFilter, type FilterIdentity } from '../filter/spawn.js';
import { log } from '../log.js';
import { parsePasswdLine } from '../mda/passwd.js';
import type { LinkBroker } from './link-broker.js';
import { isRoot, type Account } from './privileges.js';

export type FilterRequest =
  | { t: 'filter-spawn'; id: number; name: string; spec: ProcessSpec }
  | { t: 'filter-kill'; id: number; signal: NodeJS.Signals };

export type FilterReply =
  | { t: 'filter-io'; id: number; pid: number }
  | { t: 'filter-exit'; id: number; code: number | null; signal: NodeJS.Signals | null }
  | { t: 'filter-error'; id: number; error: string };

function getent(db: 'passwd' | 'group', name: string): string {
  return execFileSync('getent', [db, name], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } }).split('\n')[0] ?? '';
}

/** `user`/`group` of a filter declaration as ids; the unprivileged account when no user is named. */
export function filterIdentity(spec: ProcessSpec, fallback: Account): FilterIdentity {
  if (!isRoot()) return {};
  let uid = fallback.uid;
  let gid = fallback.gid;
  try {
    if (spec.user) {
      const info = parsePasswdLine(getent('passwd', spec.user));
      if (!info) throw new Error();
      uid = info.uid;
      gid = info.gid;
    }
  } catch {
    throw new Error(`no such user ${spec.user}`);
  }
  try {
    if (spec.group) gid = Number(getent('group', spec.group).split(':')[2] ?? 'x');
  } catch {
    gid = NaN;
  }
  if (!Number.isInteger(gid)) throw new Error(`no such group ${spec.group}`);
  return { uid, gid };
}

export class FilterHost {
  private readonly running = new Map<number, ChildProcess>();

  constructor(
    private readonly fallback: Account,
    private readonly broker: LinkBroker,
    private readonly send: (m: FilterReply, handle?: Socket) => void,
  ) {}

  handle(req: FilterRequest): void {
    if (req.t === 'filter-kill') return void this.running.get(req.id)?.kill(req.signal);
    void this.spawn(req).catch((err: Error) => this.send({ t: 'filter-error', id: req.id, error: err.message }));
  }

  private async spawn(req: Extract<FilterRequest, { t: 'filter-spawn' }>): Promise<void> {
    const identity = filterIdentity(req.spec, this.fallback);
    const [theirs, lkas] = await this.broker.pair();
    let child: ChildProcess;
    try {
      child = spawnFilter(req.spec, identity, theirs);
    } finally {
      theirs.destroy(); // the filter has its own copy now
    }
    this.running.set(req.id, child);
    child.on('error', (err: Error) => this.send({ t: 'filter-error', id: req.id, error: err.message }));
    child.on('exit', (code: number | null, signal: NodeJS.Signals | null) => {
      this.running.delete(req.id);
      this.send({ t: 'filter-exit', id: req.id, code, signal });
    });
    if (child.stderr) {
      createInterface({ input: child.stderr, crlfDelay: Infinity }).on('line', (line) => {
        log('info', null, 'lka', 'filter-stderr', { filter: req.name, line: line.slice(0, 1000) });
      });
    }
    if (child.pid === undefined) return void lkas.destroy();
    this.send({ t: 'filter-io', id: req.id, pid: child.pid }, lkas);
  }

  /** The lka went away: its filters go too (a new lka starts its own). */
  killAll(): void {
    for (const child of this.running.values()) child.kill('SIGTERM');
    this.running.clear();
  }
}
