/**
 * OpenSMTPD's `%{...}` format expansion (mda_variables.c) for mda commands, wrappers and maildir
 * paths: tokens, `[n:m]` substrings, `:lowercase|uppercase|strip|raw` modifiers, and the
 * sanitising that keeps addresses from injecting shell metacharacters. Pure, no I/O.
 */

/** The buffer size OpenSMTPD expands into; a longer value or result fails the delivery. */
export const EXPAND_BUFFER = 1024;
const MAX_TOKEN = 128;

/**
 * Characters OpenSMTPD 7.8 replaces by `:` in expanded values (smtpd.h MAILADDR_ESCAPE): an
 * address may legally hold them (RFC 5322), and a command line must not see them raw.
 */
export const MAILADDR_ESCAPE = "!#$%&'*?`{|}~";

/** The values a format may name, as OpenSMTPD's `struct deliver` holds them. */
export interface FormatVars {
  /** Envelope sender `user@domain`, or '' for the null sender. */
  sender: string;
  /** The recipient as received (OpenSMTPD `rcpt`). */
  rcpt: string;
  /** The final recipient after expansion (OpenSMTPD `dest`). */
  dest: string;
  username: string;
  directory: string;
  /** The wrapped command, only when expanding a wrapper. */
  mda?: string;
  /** `smtp sub-addr-delim`, `+` by default. */
  subAddrDelim: string;
}

export type FormatResult = { ok: true; value: string } | { ok: false; error: string };

/** Expand every `%{token}` of `format`; `%%` is a literal `%`, and a leading `~/` is the home. */
export function expandFormat(format: string, vars: FormatVars): FormatResult {
  let out = '';
  let i = 0;
  if (format.startsWith('~/')) {
    out = vars.directory + '/';
    i = 2;
  }
  while (i < format.length) {
    if (format[i] === '%' && format[i + 1] === '%') {
      out += '%';
      i += 2;
    } else if (format[i] === '%' && format[i + 1] === '{') {
      const close = format.indexOf('}', i + 2);
      // OpenSMTPD leaves such a string unexpanded; failing is the safer reading of it
      if (close === -1) return fail('unterminated %{ in format');
      const token = format.slice(i + 2, close);
      if (token.length >= MAX_TOKEN) return fail('format token too long');
      const r = expandToken(token, vars);
      if (!r.ok) return r;
      out += r.value;
      i = close + 1;
    } else {
      out += format[i];
      i += 1;
    }
    if (out.length >= EXPAND_BUFFER) return fail('expanded format too long');
  }
  return { ok: true, value: out };
}

interface ParsedToken {
  name: string;
  begin: number;
  end: number;
  modifiers: string[] | null;
}

/** Split `name[x:y]:mod|mod` as mda_expand_token does. */
export function parseToken(token: string): ParsedToken | null {
  let begin = 0;
  let end = EXPAND_BUFFER;
  let modifiers: string[] | null = null;
  let name = token;
  const lb = token.indexOf('[');
  const rb = token.indexOf(']');
  if (lb !== -1 && rb !== -1) {
    if (rb < lb || rb - lb <= 1) return null;
    name = token.slice(0, lb);
    const content = token.slice(lb + 1, rb);
    const sep = content.indexOf(':');
    if (sep === -1) {
      const n = parseOffset(content);
      if (n === null) return null;
      begin = end = n;
    } else {
      const b = content.slice(0, sep);
      const e = content.slice(sep + 1);
      if (b !== '') {
        const n = parseOffset(b);
        if (n === null) return null;
        begin = n;
      }
      if (e !== '') {
        const n = parseOffset(e);
        if (n === null) return null;
        end = n;
      }
    }
    const colon = token.indexOf(':', rb + 1);
    if (colon !== -1) modifiers = token.slice(colon + 1).split('|');
  } else {
    const colon = token.indexOf(':');
    if (colon !== -1) {
      name = token.slice(0, colon);
      modifiers = token.slice(colon + 1).split('|');
    }
  }
  return { name, begin, end, modifiers };
}

/** strtonum(3) within ±EXPAND_BUFFER: optional sign and decimal digits only. */
function parseOffset(s: string): number | null {
  if (!/^[+-]?\d+$/.test(s)) return null;
  const n = Number(s);
  return n >= -EXPAND_BUFFER && n <= EXPAND_BUFFER ? n : null;
}

function expandToken(token: string, vars: FormatVars): FormatResult {
  const parsed = parseToken(token);
  if (!parsed) return fail(`bad format token "${token}"`);
  const base = tokenValue(parsed.name.toLowerCase(), vars);
  if (!base) return fail(`unknown format token "${parsed.name}"`);
  let value = base.value;
  if (value.length >= EXPAND_BUFFER) return fail('format value too long');
  let raw = false;
  for (const mod of parsed.modifiers ?? []) {
    const m = mod.toLowerCase();
    if (m === 'raw') raw = true;
    else if (m === 'lowercase') value = asciiLower(value);
    else if (m === 'uppercase') value = asciiUpper(value);
    else if (m === 'strip') value = stripTag(value, vars.subAddrDelim);
    else return fail(`unknown format modifier "${mod}"`);
  }
  if (!raw && base.sanitize) value = sanitize(value);
  return substring(value, parsed.begin, parsed.end);
}

function tokenValue(name: string, v: FormatVars): { value: string; sanitize: boolean } | null {
  const [su, sd] = splitAddress(v.sender);
  const [ru, rd] = splitAddress(v.rcpt);
  const [du, dd] = splitAddress(v.dest);
  const table: Record<string, string | undefined> = {
    sender: v.sender,
    'sender.user': su,
    'sender.domain': sd,
    rcpt: v.rcpt,
    'rcpt.user': ru,
    'rcpt.domain': rd,
    dest: v.dest,
    'dest.user': du,
    'dest.domain': dd,
    'user.username': v.username,
    'mbox.from': v.sender === '' ? 'MAILER-DAEMON' : v.sender,
  };
  // the home directory and the wrapped command are trusted config/system data: never sanitised
  if (name === 'user.directory') return { value: v.directory, sanitize: false };
  if (name === 'mda') return v.mda === undefined ? null : { value: v.mda, sanitize: false };
  const value = table[name];
  return value === undefined ? null : { value, sanitize: true };
}

/**
 * OpenSMTPD's offsets: inclusive end; a negative begin counts from the end, and a negative end
 * from the last index (so `[-1]` alone is an error there too — kept, configs rely on the rest).
 */
export function substring(value: string, begin: number, end: number): FormatResult {
  const len = value.length;
  if (len === 0) return { ok: true, value: '' };
  if (begin >= len) return fail('substring begins past the end of the value');
  if (end >= len) end = len - 1;
  if (begin < 0) begin += len;
  if (end < 0) end += len - 1;
  if (begin < 0 || end < 0 || end < begin) return fail('bad substring offsets');
  return { ok: true, value: value.slice(begin, end + 1) };
}

export function sanitize(value: string): string {
  let out = '';
  for (const ch of value) out += MAILADDR_ESCAPE.includes(ch) ? ':' : ch;
  return out;
}

/** `gilles+hackers@poolp.org` → `gilles@poolp.org`; `gilles+hackers` → `gilles`. */
export function stripTag(value: string, delim: string): string {
  const d = delim === '' ? '+' : delim[0]!;
  const tag = value.indexOf(d);
  if (tag === -1) return value;
  const at = value.indexOf('@', tag);
  return at === -1 ? value.slice(0, tag) : value.slice(0, tag) + value.slice(at);
}

/** `user@domain` → [user, domain]; the last `@` separates them, '' gives ['', '']. */
export function splitAddress(addr: string): [string, string] {
  const at = addr.lastIndexOf('@');
  return at === -1 ? [addr, ''] : [addr.slice(0, at), addr.slice(at + 1)];
}

function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

function asciiUpper(s: string): string {
  return s.replace(/[a-z]/g, (c) => c.toUpperCase());
}

function fail(error: string): FormatResult {
  return { ok: false, error };
}
