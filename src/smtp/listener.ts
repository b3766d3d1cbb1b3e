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

export const ENQUEUE_SOCKET = 'enqueue.sock';

function familyAllows(listener: Listener, address: string): boolean {
  const v = isIP(address);
  return listener.family === 'any' || (listener.family === 'inet4' ? v === 4 : v === 6);
}

/** The addresses a listener binds; an unknown interface name is an error, not a silent skip. */
export function bindAddresses(listener: Listener): string[] {
  const name = listener.interface;
  let candidates: string[];
  if (isIP(name.replace(/^\[|\]$/g, ''))) candidates = [name.replace(/^\[|\]$/g, '')];
  else if (name === 'localhost') candidates = ['127.0.0.1', '::1'];
  else if (name === 'all') candidates = ['0.0.0.0', '::'];
  else {
    const ifs = networkInterfaces()[name];
    if (!ifs) throw new Error(`listen on ${name}: no such interface or address`);
    candidates = ifs.map((i) => i.address);
  }
  const hasV6 = Object.values(networkInterfaces()).some((l) => l?.some((i) => i.family === 'IPv6'));
  return candidates.filter((a) => familyAllows(listener, a) && (isIP(a) === 4 || hasV6));
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
