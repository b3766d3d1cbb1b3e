/**
 * The addresses a `listen on` directive binds, found as smtpd's create_if_listener() finds them:
 * an interface's addresses (interface()), an IP address (host_v4(), host_v6()), else a host name
 * resolved through /etc/hosts and DNS (host_dns()); nothing found is "invalid virtual ip or
 * interface". tsmtpd also knows `all` (every address); `localhost` is 127.0.0.1 and ::1. An IPv6 link-local address is bound with
 * its interface as scope (`fe80::1%eth0`), which the kernel requires. tsmtpd refuses, at
 * `tsmtpd -n`, an address this machine does not have, where smtpd would only fail to bind it.
 */
import { isIP } from 'node:net';
import type { NetworkInterfaceInfo } from 'node:os';
import type { Listener } from '../config/types.js';

export type Interfaces = NodeJS.Dict<NetworkInterfaceInfo[]>;

/** What the machine has and knows: its interfaces, a name resolver, and the nonlocal-bind sysctls. */
export interface HostView {
  interfaces: Interfaces;
  /** Addresses of a name for one family ([] when it has none). */
  resolve(name: string, family: 4 | 6): Promise<string[]>;
  /** net.ipv4.ip_nonlocal_bind / net.ipv6.ip_nonlocal_bind: any address may be bound. */
  nonlocalBind: { v4: boolean; v6: boolean };
}

export class ListenAddressError extends Error {
  override name = 'ListenAddressError';
}

function isLinkLocal(address: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(address);
}

/** An interface's addresses as bind() wants them: link-local IPv6 with `%interface`. */
export function interfaceAddresses(name: string, interfaces: Interfaces): string[] {
  return (interfaces[name] ?? []).map((i) => (i.family === 'IPv6' && isLinkLocal(i.address) ? `${i.address}%${name}` : i.address));
}

/** What a lookup needs of a listener: the name after `listen on`, and the family it allows. */
export type ListenSpec = Pick<Listener, 'interface' | 'family'>;

function familyOf(l: ListenSpec): 4 | 6 | undefined {
  return l.family === 'inet4' ? 4 : l.family === 'inet6' ? 6 : undefined;
}

function hasIpv6(interfaces: Interfaces): boolean {
  return Object.values(interfaces).some((list) => list?.some((i) => i.family === 'IPv6'));
}

/** Linux binds every 127/8 address and ::1 on lo, and the wildcard addresses anywhere. */
function alwaysBindable(address: string): boolean {
  return /^127\./.test(address) || address === '::1' || address === '0.0.0.0' || address === '::';
}

/** Does the machine have this address (or may it bind any)? */
export function isLocalAddress(address: string, host: Pick<HostView, 'interfaces' | 'nonlocalBind'>): boolean {
  const bare = address.replace(/%.*$/, '').toLowerCase();
  if (alwaysBindable(bare)) return true;
  if (isIP(bare) === 4 ? host.nonlocalBind.v4 : host.nonlocalBind.v6) return true;
  return Object.values(host.interfaces).some((list) => list?.some((i) => i.address.toLowerCase() === bare));
}

/** The addresses without a name lookup, or null when the name needs one (interfaces, literals, `all`). */
export function directAddresses(l: ListenSpec, interfaces: Interfaces): string[] | null {
  const name = l.interface.replace(/^\[(.*)\]$/, '$1');
  const family = familyOf(l);
  const v6 = hasIpv6(interfaces);
  const keep = (a: string) => (family === undefined || isIP(a) === family) && (isIP(a) === 4 || v6);
  if (isIP(name)) return [name].filter((a) => family === undefined || isIP(a) === family);
  if (name === 'all') return ['0.0.0.0', '::'].filter(keep);
  // what getaddrinfo() gives for it everywhere, without a lookup
  if (name === 'localhost') return ['127.0.0.1', '::1'].filter(keep);
  if (interfaces[name]) return interfaceAddresses(name, interfaces).filter(keep);
  return null;
}

/** Every address the listener binds; throws ListenAddressError when there is none or one is not here. */
export async function listenAddresses(l: ListenSpec, host: HostView): Promise<string[]> {
  let found = directAddresses(l, host.interfaces);
  if (found === null) {
    const families: (4 | 6)[] = familyOf(l) ? [familyOf(l)!] : hasIpv6(host.interfaces) ? [4, 6] : [4];
    found = (await Promise.all(families.map((f) => host.resolve(l.interface, f)))).flat();
  }
  const addresses = [...new Set(found)];
  if (addresses.length === 0) throw new ListenAddressError(`invalid virtual ip or interface: ${l.interface}`);
  const foreign = addresses.find((a) => !isLocalAddress(a, host));
  if (foreign) {
    throw new ListenAddressError(`listen on ${l.interface}: ${foreign === l.interface ? 'this machine has no such address' : `${foreign} is no address of this machine`}`);
  }
  return addresses;
}
