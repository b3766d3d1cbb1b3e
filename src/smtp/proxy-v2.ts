/**
 * The PROXY protocol v2 header a `proxy-v2` listener reads before SMTP (haproxy's
 * proxy-protocol.txt §2.2), parsed as OpenSMTPD's proxy.c parses it: the 12-octet signature,
 * version 2, a LOCAL or PROXY command, an UNSPEC, TCP-over-IPv4 or TCP-over-IPv6 address block
 * (smtpd also takes AF_UNIX, which tsmtpd refuses), and TLVs skipped. Pure: bytes in, a verdict out.
 */
import { isIPv6 } from 'node:net';

const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const FIXED = 16;

/** proxy_header_validate(): the address block's size per family/transport octet. */
const ADDRESS_SIZE: Record<number, number> = { 0x00: 0, 0x11: 12, 0x21: 36 };

export interface Endpoint {
  address: string;
  port: number;
}

export type ProxyHeader =
  | { kind: 'need' }
  | { kind: 'error'; reason: string }
  /** `local` (a health check by the proxy itself): the connection's own addresses stand. */
  | { kind: 'local'; length: number }
  | { kind: 'proxy'; length: number; source: Endpoint; destination: Endpoint };

function ipv6(b: Buffer): string {
  // an IPv4 client of an IPv6 proxy: written as the session writes such addresses
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  const text = groups.join(':');
  // the shortest form, as the socket API would give it
  return isIPv6(text) ? new URL(`http://[${text}]/`).hostname.slice(1, -1) : text;
}

export function parseProxyV2(buf: Buffer): ProxyHeader {
  if (buf.length < FIXED) {
    // a wrong signature is known from its first octets: no need to wait for more
    return buf.equals(SIGNATURE.subarray(0, Math.min(buf.length, 12))) ? { kind: 'need' } : { kind: 'error', reason: 'invalid signature' };
  }
  if (!buf.subarray(0, 12).equals(SIGNATURE)) return { kind: 'error', reason: 'invalid signature' };
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return { kind: 'error', reason: 'invalid version' };
  const fam = buf[13]!;
  const addrSize = ADDRESS_SIZE[fam];
  if (addrSize === undefined) return { kind: 'error', reason: 'unsupported address family' };
  const length = FIXED + buf.readUInt16BE(14);
  if (length < FIXED + addrSize) return { kind: 'error', reason: 'address info too short' };
  if (buf.length < length) return { kind: 'need' };
  const command = verCmd & 0x0f;
  if (command === 0x0) return { kind: 'local', length };
  if (command !== 0x1) return { kind: 'error', reason: 'unknown command' };
  if (fam === 0x00) return { kind: 'error', reason: 'UNSPEC family not supported for PROXYing' };
  const a = buf.subarray(FIXED, FIXED + addrSize);
  if (fam === 0x11) {
    const v4 = (o: number) => `${a[o]}.${a[o + 1]}.${a[o + 2]}.${a[o + 3]}`;
    return { kind: 'proxy', length, source: { address: v4(0), port: a.readUInt16BE(8) }, destination: { address: v4(4), port: a.readUInt16BE(10) } };
  }
  return {
    kind: 'proxy', length,
    source: { address: ipv6(a.subarray(0, 16)), port: a.readUInt16BE(32) },
    destination: { address: ipv6(a.subarray(16, 32)), port: a.readUInt16BE(34) },
  };
}
