/**
 * Answers the daemon gives without asking any DNS server, as glibc's `files dns` order does:
 * `localhost`, names in /etc/hosts, and the reverse of loopback and /etc/hosts addresses.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

export interface HostsFile {
  forward: Map<string, string[]>;
  reverse: Map<string, string>;
}

export function parseHosts(text: string): HostsFile {
  const forward = new Map<string, string[]>();
  const reverse = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const [address, ...names] = raw.replace(/#.*/, '').trim().split(/\s+/);
    if (!address || names.length === 0 || !isIP(address)) continue;
    for (const name of names) {
      const key = name.toLowerCase();
      forward.set(key, [...(forward.get(key) ?? []), address]);
    }
    if (!reverse.has(address)) reverse.set(address, names[0]!.toLowerCase());
  }
  return { forward, reverse };
}

export function loadHosts(path = '/etc/hosts'): HostsFile {
  try {
    return parseHosts(readFileSync(path, 'utf8'));
  } catch {
    return parseHosts('');
  }
}

export function isLoopbackAddress(address: string): boolean {
  return /^127\./.test(address) || address === '::1' || /^::ffff:127\./i.test(address);
}
