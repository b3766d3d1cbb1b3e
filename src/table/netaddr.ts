/**
 * netaddr matching: an address against `1.2.3.4`, `10.0.0.0/8`, `[::1]`, `[2001:db8::]/32`
 * entries, IPv4-mapped IPv6 addresses counting as their IPv4 form, `local` matching by name.
 */
import { isIP } from 'node:net';

/** The address as 4 or 16 bytes, or null. */
export function addressBytes(text: string): Buffer | null {
  const a = text.replace(/^\[|\]$/g, '').replace(/^ipv6:/i, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped) return addressBytes(mapped[1]!);
  if (isIP(a) === 4) return Buffer.from(a.split('.').map(Number));
  if (isIP(a) !== 6) return null;
  const [head, tail] = a.includes('::') ? a.split('::') as [string, string] : [a, ''];
  const parse = (s: string) => (s === '' ? [] : s.split(':'));
  let h = parse(head);
  let t = parse(tail);
  // an embedded IPv4 tail (::ffff:1.2.3.4 forms other than the mapped one)
  const expand = (parts: string[]) => parts.flatMap((p) => {
    if (!p.includes('.')) return [p];
    const b = p.split('.').map(Number);
    return [((b[0]! << 8) | b[1]!).toString(16), ((b[2]! << 8) | b[3]!).toString(16)];
  });
  h = expand(h);
  t = expand(t);
  const groups = a.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

export function matchNetaddr(entry: string, address: string): boolean {
  if (entry === 'local' || address === 'local') return entry === address;
  const slash = entry.lastIndexOf('/');
  const net = addressBytes(slash > 0 ? entry.slice(0, slash) : entry);
  const addr = addressBytes(address);
  if (!net || !addr || net.length !== addr.length) return false;
  // digits only: Number('') is 0, so `10.0.0.0/` would otherwise be a /0 matching everyone
  const prefix = slash > 0 ? entry.slice(slash + 1) : null;
  if (prefix !== null && !/^\d{1,3}$/.test(prefix)) return false;
  const bits = prefix !== null ? Number(prefix) : net.length * 8;
  if (bits > net.length * 8) return false;
  for (let i = 0; i < net.length; i++) {
    const take = Math.max(0, Math.min(8, bits - i * 8));
    const mask = take === 0 ? 0 : (0xff << (8 - take)) & 0xff;
    if ((net[i]! & mask) !== (addr[i]! & mask)) return false;
  }
  return true;
}
