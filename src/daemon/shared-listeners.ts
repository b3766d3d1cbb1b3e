/**
 * Listening sockets bound by the parent and accepted on by every smtp worker, as cluster's
 * SCHED_NONE mode shares them: the parent binds (as root, for port 25) but never listens nor
 * accepts; each worker listens on its copy of the descriptor and the kernel gives each new
 * connection to one of them. A connection then costs no descriptor passing and no trip through
 * the parent before the banner; the parent only keeps the count (admission.ts). While no worker
 * runs, clients wait in the socket's backlog instead of being refused.
 *
 * Binding without listening needs `net._createServerHandle`, the function cluster itself uses;
 * where a Node lacks it, the parent accepts and hands each connection over as before.
 */
import net from 'node:net';
import { getSystemErrorName } from 'node:util';
import type { Listener } from '../config/types.js';
import { bindAddresses } from '../smtp/listener.js';

/** A bound TCP socket's handle, as Node's child_process sends it to another process. */
export interface BoundHandle {
  getsockname(out: { address?: string; port?: number }): number;
  close(): void;
}

type CreateServerHandle = (address: string, port: number, addressType: number, fd?: number, flags?: number) => BoundHandle | number;
const createServerHandle = (net as unknown as { _createServerHandle?: CreateServerHandle })._createServerHandle;
/** uv_tcp_bind's UV_TCP_IPV6ONLY: `::` must not take IPv4 too (`all` binds 0.0.0.0 itself). */
const IPV6_ONLY = 1;

export interface SharedSocket {
  listener: number;
  handle: BoundHandle;
  address: string;
  port: number;
}

export function canShareListeners(): boolean {
  return typeof createServerHandle === 'function';
}

/** Bind every address of a TCP listener; the first failure closes what was bound and throws as listen(2) would. */
export function bindShared(listener: Listener, index: number): SharedSocket[] {
  const bound: SharedSocket[] = [];
  for (const host of bindAddresses(listener)) {
    const family = net.isIP(host.replace(/%.*$/, ''));
    const handle = createServerHandle!(host, listener.port, family, undefined, family === 6 ? IPV6_ONLY : 0);
    if (typeof handle === 'number') {
      for (const b of bound) b.handle.close();
      const code = getSystemErrorName(handle);
      throw Object.assign(new Error(`listen ${code}: ${host}:${listener.port}`), { code });
    }
    const name: { address?: string; port?: number } = {};
    handle.getsockname(name);
    bound.push({ listener: index, handle, address: name.address ?? host, port: name.port ?? listener.port });
  }
  return bound;
}
