/**
 * RFC 5321 §4.1.2 paths, strictly, with the RFC 6531 (SMTPUTF8) extensions: the `<...>` of MAIL
 * FROM and RCPT TO and what follows it. Pure: text in, an address or the reply to give out.
 */
import { domainToASCII } from 'node:url';
import { isIP } from 'node:net';
import type { Reply } from './reply.js';

export interface Address {
  /** The local part as it goes on the wire: a dot-string, or a quoted string with its quotes. */
  local: string;
  /** The domain as the client wrote it (U-labels allowed with SMTPUTF8), or an address literal. */
  domain: string;
  /** Lower-case A-label form, so that case and IDN variants of one domain compare equal. */
  asciiDomain: string;
}

export type PathResult = { ok: true; address: Address; params: string } | { ok: false; reply: Reply };

export interface PathOptions {
  smtputf8: boolean;
  /**
   * Completes a mailbox without a domain (`<bob>`), as smtp_session.c smtp_mailaddr does with the
   * session's smtpname; given for the local socket only, where sendmail and cron submit.
   */
  defaultDomain?: string;
}

const MAX_LOCAL = 64;
const MAX_DOMAIN = 255;
const MAX_PATH = 256;

const syntax = (what: string): PathResult => ({ ok: false, reply: { code: 501, enhanced: '5.5.4', text: `Syntax error in ${what}` } });
const bad = (enhanced: '5.1.3' | '5.1.7', text: string): PathResult => ({ ok: false, reply: { code: 553, enhanced, text } });

/**
 * Controls, format characters (bidi overrides), line/paragraph separators, unassigned, and U+FFFD
 * (what octets that were not UTF-8 became when the line was read): never in an address.
 */
const UNSAFE_UNICODE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Co}\p{Cn}\uFFFD]/u;

/** atext of RFC 5322, plus non-ASCII characters when SMTPUTF8 is in use (RFC 6531 §3.3). */
function isAtext(ch: string, utf8: boolean): boolean {
  return /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]$/.test(ch) || (utf8 && ch.codePointAt(0)! >= 0x80 && !UNSAFE_UNICODE.test(ch));
}

function isDotString(s: string, utf8: boolean): boolean {
  if (s === '' || s.startsWith('.') || s.endsWith('.') || s.includes('..')) return false;
  for (const ch of s) if (ch !== '.' && !isAtext(ch, utf8)) return false;
  return true;
}

/** A quoted string: printable ASCII (and UTF-8 with SMTPUTF8) with `\` escapes; never a control char. */
function isQuotedString(s: string, utf8: boolean): boolean {
  if (s.length < 2 || !s.startsWith('"') || !s.endsWith('"')) return false;
  const inner = [...s.slice(1, -1)];
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i]!.codePointAt(0)!;
    if (inner[i] === '\\') {
      const next = inner[++i];
      if (next === undefined || next.codePointAt(0)! < 0x20 || next.codePointAt(0)! === 0x7f) return false;
      continue;
    }
    if (inner[i] === '"' || c < 0x20 || c === 0x7f || (c >= 0x80 && (!utf8 || UNSAFE_UNICODE.test(inner[i]!)))) return false;
  }
  return true;
}

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** A domain: LDH labels (U-labels with SMTPUTF8), no trailing dot; returns its A-label form. */
function parseDomain(domain: string, utf8: boolean): string | null {
  if (domain === '' || Buffer.byteLength(domain) > MAX_DOMAIN) return null;
  const ascii = /^[\x00-\x7f]*$/.test(domain);
  if (!ascii && !utf8) return null;
  const a = ascii ? domain.toLowerCase() : domainToASCII(domain.toLowerCase());
  if (!a || a.length > MAX_DOMAIN) return null;
  const labels = a.split('.');
  // IDNA mapping can turn full-width digits into an IPv4-looking name: never a domain here
  if (!ascii && /^[\d.]+$/.test(a)) return null;
  return labels.every((l) => LABEL.test(l)) ? a : null;
}

/** `[1.2.3.4]` or `[IPv6:...]`; general address literals (`[tag:...]`) are refused. */
function parseLiteral(domain: string): string | null {
  const m = /^\[(.*)\]$/.exec(domain);
  if (!m) return null;
  const body = m[1]!;
  if (/^IPv6:/i.test(body)) {
    const v6 = body.slice(5);
    return isIP(v6) === 6 ? `[ipv6:${v6.toLowerCase()}]` : null;
  }
  return isIP(body) === 4 && /^\d{1,3}(?:\.\d{1,3}){3}$/.test(body) ? `[${body}]` : null;
}

/** Split `<path> params` (tolerating spaces before `<`, as most servers do); the path keeps its brackets. */
function splitPath(text: string): { path: string; params: string } | null {
  const t = text.replace(/^ +/, '');
  if (!t.startsWith('<')) return null;
  let quoted = false;
  for (let i = 1; i < t.length; i++) {
    const ch = t[i];
    if (quoted && ch === '\\') { i++; continue; }
    if (ch === '"') quoted = !quoted;
    else if (ch === '>' && !quoted) {
      const rest = t.slice(i + 1);
      if (rest !== '' && !rest.startsWith(' ')) return null;
      return { path: t.slice(1, i), params: rest.trim() };
    }
  }
  return null;
}

/** The last `@` outside a quoted local part separates local part and domain; none takes `defaultDomain`. */
function splitMailbox(mailbox: string, defaultDomain?: string): [string, string] | null {
  let quoted = false;
  let at = -1;
  for (let i = 0; i < mailbox.length; i++) {
    const ch = mailbox[i];
    if (quoted && ch === '\\') { i++; continue; }
    if (ch === '"') quoted = !quoted;
    else if (ch === '@' && !quoted) at = i;
  }
  if (at === -1 && !quoted && defaultDomain) return [mailbox, defaultDomain];
  if (at <= 0 || quoted) return null;
  return [mailbox.slice(0, at), mailbox.slice(at + 1)];
}

function parseMailbox(mailbox: string, o: PathOptions): PathResult | Address {
  // source routes (`@a,@b:user@c`) are obsolete (RFC 5321 §4.1.2, C.); they are also how relay
  // tricks route through a host, so they are refused rather than silently stripped
  if (mailbox.startsWith('@')) return bad('5.1.3', 'Source routes are not accepted');
  if (!o.smtputf8 && /[^\x00-\x7f]/.test(mailbox)) {
    return { ok: false, reply: { code: 553, enhanced: '5.6.7', text: 'Non-ASCII addresses not permitted for that sender/recipient' } };
  }
  const parts = splitMailbox(mailbox, o.defaultDomain);
  if (!parts) return bad('5.1.3', 'Invalid address syntax');
  const [local, domain] = parts;
  if (Buffer.byteLength(local) > MAX_LOCAL) return bad('5.1.3', 'Local part too long');
  if (!isDotString(local, o.smtputf8) && !isQuotedString(local, o.smtputf8)) return bad('5.1.3', 'Invalid local part');
  const asciiDomain = domain.startsWith('[') ? parseLiteral(domain) : parseDomain(domain, o.smtputf8);
  if (!asciiDomain) return bad('5.1.3', 'Invalid domain');
  return { local, domain, asciiDomain };
}

function parsePath(text: string, o: PathOptions, allowNull: boolean, what: string): PathResult {
  const split = splitPath(text);
  if (!split) return syntax(what);
  const { path, params } = split;
  if (Buffer.byteLength(path) > MAX_PATH) return bad('5.1.3', 'Path too long');
  if (path === '') {
    return allowNull ? { ok: true, address: { local: '', domain: '', asciiDomain: '' }, params } : syntax(what);
  }
  const parsed = parseMailbox(path, o);
  if ('ok' in parsed) return parsed;
  return { ok: true, address: parsed, params };
}

/** MAIL FROM's argument: the null path `<>` is allowed. */
export function parseReversePath(text: string, o: PathOptions): PathResult {
  const r = parsePath(text, o, true, 'MAIL FROM');
  if (!r.ok && r.reply.enhanced === '5.1.3') return { ok: false, reply: { ...r.reply, enhanced: '5.1.7' } };
  return r;
}

/** RCPT TO's argument: `<Postmaster>` alone (no domain) is allowed and means the local postmaster. */
export function parseForwardPath(text: string, o: PathOptions): PathResult {
  const split = splitPath(text);
  if (split && split.path.toLowerCase() === 'postmaster') {
    return { ok: true, address: { local: 'postmaster', domain: '', asciiDomain: '' }, params: split.params };
  }
  return parsePath(text, o, false, 'RCPT TO');
}

/** `local@domain` as the rest of the daemon keys it: the domain in lower-case A-labels. */
export function addressKey(a: Address): string {
  return a.local === '' && a.asciiDomain === '' ? '' : a.asciiDomain ? `${a.local}@${a.asciiDomain}` : a.local;
}
