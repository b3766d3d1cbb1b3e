/**
 * Sender Rewriting Scheme, as libsrs2 and OpenSMTPD spell it: a forwarded message's sender
 * becomes `SRS0=HHHH=TT=domain=local@forwarder`, so SPF at the next hop sees our domain, and the
 * bounces that come back can be routed to the original sender after their hash and age check.
 * Pure functions: key and time are passed in.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const DAY = 86_400;
/** Timestamps are days modulo 1024, two base32 characters. */
const TS_MOD = 1024;

function hash(key: string, ...parts: string[]): string {
  // case-blind: local parts may be case-folded on the way back
  return createHmac('sha1', key).update(parts.join('').toLowerCase()).digest('base64').slice(0, 4);
}

function timestamp(nowSec: number): string {
  const day = Math.floor(nowSec / DAY) % TS_MOD;
  return BASE32[day >> 5]! + BASE32[day & 31]!;
}

function split(address: string): [string, string] {
  const at = address.lastIndexOf('@');
  return [address.slice(0, at), address.slice(at + 1)];
}

/** Rewrite `sender` for a message forwarded by `forwarder` (one of our domains). */
export function srsEncode(sender: string, forwarder: string, key: string, nowSec: number): string {
  const [local, domain] = split(sender);
  const srs0 = /^SRS0[=+-](.*)$/i.exec(local);
  const srs1 = /^SRS1[=+-]([^=]+)=(.*)$/i.exec(local);
  if (srs1) {
    // already SRS1: keep its first hop, re-sign for ours
    const [, first, rest] = srs1 as unknown as [string, string, string];
    return `SRS1=${hash(key, first, rest)}=${first}=${rest}@${forwarder}`;
  }
  if (srs0) {
    const rest = `=${srs0[1]!}`;
    return `SRS1=${hash(key, domain, rest)}=${domain}=${rest}@${forwarder}`;
  }
  const ts = timestamp(nowSec);
  return `SRS0=${hash(key, ts, domain, local)}=${ts}=${domain}=${local}@${forwarder}`;
}

export type SrsResult = { ok: true; address: string } | { ok: false; reason: string };

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a.toLowerCase());
  const y = Buffer.from(b.toLowerCase());
  return x.length === y.length && timingSafeEqual(x, y);
}

function ageOk(ts: string, nowSec: number, ttlSec: number): boolean {
  const t = ts.toUpperCase();
  const hi = BASE32.indexOf(t[0] ?? '');
  const lo = BASE32.indexOf(t[1] ?? '');
  if (t.length !== 2 || hi < 0 || lo < 0) return false;
  const then = (hi << 5) | lo;
  const today = Math.floor(nowSec / DAY) % TS_MOD;
  const age = (today - then + TS_MOD) % TS_MOD;
  return age * DAY <= ttlSec;
}

/** Undo one SRS hop: SRS0 gives the original sender, SRS1 the SRS0 address at the first forwarder. */
export function srsDecode(address: string, keys: string[], nowSec: number, ttlSec: number): SrsResult {
  const [local] = split(address);
  const srs0 = /^SRS0[=+-]([^=]{4})=([^=]{2})=([^=]+)=(.+)$/i.exec(local);
  if (srs0) {
    const [, h, ts, domain, orig] = srs0 as unknown as [string, string, string, string, string];
    if (!keys.some((k) => sameHash(h, hash(k, ts, domain, orig)))) return { ok: false, reason: 'bad SRS hash' };
    if (!ageOk(ts, nowSec, ttlSec)) return { ok: false, reason: 'expired SRS address' };
    return { ok: true, address: `${orig}@${domain}` };
  }
  const srs1 = /^SRS1[=+-]([^=]{4})=([^=]+)==(.+)$/i.exec(local);
  if (srs1) {
    const [, h, first, rest] = srs1 as unknown as [string, string, string, string];
    if (!keys.some((k) => sameHash(h, hash(k, first, `=${rest}`)))) return { ok: false, reason: 'bad SRS hash' };
    return { ok: true, address: `SRS0=${rest}@${first}` };
  }
  return { ok: false, reason: 'not an SRS address' };
}

export function isSrsAddress(address: string): boolean {
  return /^SRS[01][=+-]/i.test(address);
}
