/** Scalar values of smtpd.conf: sizes with units, delays with units, ports by number or name. */

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
const DELAY_UNITS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400 };
const PORT_NAMES: Record<string, number> = { smtp: 25, smtps: 465, submission: 587, submissions: 465, lmtp: 24 };

/** `35M`, `1024`, `10k` (scan_scaled): bytes, or null when malformed. */
export function parseSize(text: string): number | null {
  const m = /^(\d+)([bkmgt]?)$/i.exec(text);
  if (!m) return null;
  const v = Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!;
  return Number.isSafeInteger(v) ? v : null;
}

/**
 * `4d`, `30m`, `300s`: seconds, or null when malformed. smtpd's delaytonum() wants a unit and at
 * least 1; `unitless` lets tsmtpd's own delays through (`smtp timeout 300`, `max-command-time`,
 * `smtp ban`), which take seconds without a unit and check their own minimum.
 */
export function parseDelay(text: string, unitless = false): number | null {
  const m = (unitless ? /^(\d+)([smhd]?)$/ : /^(\d+)([smhd])$/).exec(text);
  if (!m || (!unitless && Number(m[1]) < 1)) return null;
  const v = Number(m[1]) * DELAY_UNITS[m[2]!]!;
  return Number.isSafeInteger(v) ? v : null;
}

/** A port number 1..65535 or a service name; null when neither. */
export function parsePort(text: string): number | null {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    return n >= 1 && n <= 65535 ? n : null;
  }
  return Object.hasOwn(PORT_NAMES, text) ? PORT_NAMES[text]! : null;
}

export function parseCount(text: string): number | null {
  if (!/^\d+$/.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : null;
}

/** `ADDR[:PORT]`, `[v6]:PORT` or a bare v6 address, for `resolver`. */
export function parseHostPort(text: string, defaultPort: number): { address: string; port: number } | null {
  let m = /^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$/.exec(text);
  if (m) return withPort(m[1]!, m[2], defaultPort);
  m = /^([0-9.]+)(?::(\d+))?$/.exec(text);
  if (m) return withPort(m[1]!, m[2], defaultPort);
  if (/^[0-9A-Fa-f:]+$/.test(text) && text.includes(':')) return { address: text, port: defaultPort };
  return null;
}

function withPort(address: string, port: string | undefined, def: number) {
  const p = port === undefined ? def : parsePort(port);
  return p === null ? null : { address, port: p };
}
