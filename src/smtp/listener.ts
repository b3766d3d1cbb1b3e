/**
 * Opens the sockets of the `listen on` directives: addresses, interface names, `localhost`,
 * `all`, each for the families the listener allows, and the `socket` listener as a UNIX socket
 * in the spool (mode 0666: any local user may submit, as through smtpd's socket).
 */
import { chmodSync, unlinkSync } from 'node:fs';
import { isIP, createServer, type Server, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { Listener } from '../config/types.js';
import { directAddresses } from '../daemon/listen-addresses.js';

export const ENQUEUE_SOCKET = 'enqueue.sock';

/**
 * The addresses a listener binds: those `tsmtpd` resolved at start (listen-addresses.ts, which
 * also knows host names), else interfaces, literals and `all` found here; never a silent skip.
 */
export function bindAddresses(listener: Listener): string[] {
  const found = listener.addresses ?? directAddresses(listener, networkInterfaces());
  if (found === null || found.length === 0) throw new Error(`listen on ${listener.interface}: no such interface or address`);
  return found;
}

/** `pauseOnConnect`: the accepting process reads nothing; it hands the socket on (the parent). */
export async function openListener(
  listener: Listener,
  spool: string,
  onConnection: (socket: Socket) => void,
  options: { pauseOnConnect?: boolean } = {},
): Promise<Server[]> {
  if (listener.kind === 'socket') {
    const path = join(spool, ENQUEUE_SOCKET);
    try {
      unlinkSync(path); // a previous daemon's; the spool lock says none runs now
    } catch {
      // none
    }
    const server = await listen(createServer(options, onConnection), { path });
    chmodSync(path, 0o666);
    return [server];
  }
  const servers: Server[] = [];
  for (const host of bindAddresses(listener)) {
    // `::` would also take IPv4 unless told not to, and `all` binds 0.0.0.0 itself
    servers.push(await listen(createServer(options, onConnection), { host, port: listener.port, ipv6Only: isIP(host) === 6 }));
  }
  return servers;
}

function listen(server: Server, options: { host?: string; port?: number; path?: string; ipv6Only?: boolean }): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
