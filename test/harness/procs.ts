/**
 * What the kernel says about the daemon's processes (Linux /proc): each process's uid and root
 * directory, the processes of `tsmtpctl show status`, and which process holds the server side
 * of a given TCP connection — so tests check privilege separation on the real thing.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { TSMTPD_BIN } from './daemon.js';

export const CTL = resolve(dirname(TSMTPD_BIN), 'tsmtpctl.js');

export interface DaemonProcess {
  name: string;
  pid: number;
  user: string;
  restarts: number;
}

/** The processes `show status` lists, as the daemon sees them. */
export function daemonProcesses(spool: string): DaemonProcess[] {
  const r = spawnSync(process.execPath, [CTL, '--spool', spool, 'show', 'status'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`show status: ${r.stderr}`);
  return r.stdout.split('\n').flatMap((l) => {
    const m = /^process (\S+) pid=(\d+) user=(\S+) uptime=\d+s restarts=(\d+)$/.exec(l);
    return m ? [{ name: m[1]!, pid: Number(m[2]), user: m[3]!, restarts: Number(m[4]) }] : [];
  });
}

/** The real, effective uid of a process, from /proc/PID/status. */
export function uidOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('Uid:'))!;
  return Number(line.split(/\s+/)[2]);
}

export function rootOf(pid: number): string {
  return readlinkSync(`/proc/${pid}/root`);
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The socket inode of the server side of the TCP connection from `clientPort` to `serverPort`. */
function serverInode(serverPort: number, clientPort: number): string | undefined {
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      if (f[1]!.endsWith(`:${hex(serverPort)}`) && f[2]!.endsWith(`:${hex(clientPort)}`)) return f[9];
    }
  }
  return undefined;
}

/** Every process holding the server side of that connection (normally exactly one). */
export function holdersOf(serverPort: number, clientPort: number): number[] {
  const inode = serverInode(serverPort, clientPort);
  if (!inode) return [];
  const holders: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${name}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${name}/fd/${fd}`) === `socket:[${inode}]`) {
          holders.push(Number(name));
          break;
        }
      } catch {
        // the descriptor closed while we looked
      }
    }
  }
  return holders;
}
