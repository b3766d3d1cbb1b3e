/**
 * What a remote server offers in its EHLO/LHLO reply, and the ESMTP parameter encodings the
 * client needs for it (xtext for ENVID and ORCPT, RFC 3461).
 */
import type { Reply } from './reply-parser.js';

export interface Capabilities {
  starttls: boolean;
  pipelining: boolean;
  dsn: boolean;
  smtputf8: boolean;
  eightBitMime: boolean;
  /** SIZE was offered: the SIZE= parameter may be sent. */
  sizeOffered: boolean;
  /** SIZE limit; 0 when offered without a number or not offered. */
  size: number;
  auth: Set<string>;
}

export const NO_CAPABILITIES: Capabilities = {
  starttls: false, pipelining: false, dsn: false, smtputf8: false, eightBitMime: false, sizeOffered: false, size: 0, auth: new Set(),
};

/** The first line is the server's greeting name; every further line is one keyword and its args. */
export function parseCapabilities(r: Reply): Capabilities {
  const caps: Capabilities = { ...NO_CAPABILITIES, auth: new Set() };
  for (const line of r.lines.slice(1)) {
    const [kw = '', ...args] = line.trim().split(/\s+/);
    switch (kw.toUpperCase()) {
      case 'STARTTLS': caps.starttls = true; break;
      case 'PIPELINING': caps.pipelining = true; break;
      case 'DSN': caps.dsn = true; break;
      case 'SMTPUTF8': caps.smtputf8 = true; break;
      case '8BITMIME': caps.eightBitMime = true; break;
      case 'SIZE': caps.sizeOffered = true; caps.size = /^\d{1,15}$/.test(args[0] ?? '') ? Number(args[0]) : 0; break;
      case 'AUTH': for (const a of args) caps.auth.add(a.toUpperCase()); break;
    }
  }
  return caps;
}

/** RFC 3461 xtext: `+`, `=`, controls, space and non-ASCII become `+HH`. */
export function xtext(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    out += b < 33 || b > 126 || b === 0x2b || b === 0x3d ? '+' + b.toString(16).toUpperCase().padStart(2, '0') : String.fromCharCode(b);
  }
  return out;
}
