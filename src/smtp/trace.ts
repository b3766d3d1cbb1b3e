/**
 * What the server writes into a message it accepts: the `Received:` trace line of RFC 5321 §4.4
 * in OpenSMTPD's shape, and on submission listeners the `Message-ID:` and `Date:` a client left
 * out. Every value interpolated here comes from the client, so each is stripped of anything that
 * could end a header line or break its syntax.
 */
import { randomBytes } from 'node:crypto';
import type { SessionFacts } from '../bus/messages.js';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 5322 §3.3 date-time, in UTC. */
export function rfc5322Date(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]}, ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/**
 * Only printable ASCII without the characters that delimit comments and addresses in a header;
 * with `utf8` (an SMTPUTF8 message, RFC 6532) printable UTF-8 too, never a control, format or
 * separator character.
 */
export function headerSafe(value: string, utf8 = false): string {
  const unsafe = utf8 ? /[^\x21-\x7e\u0080-\u{10ffff}]|[()<>\\";]|[\p{Cc}\p{Cf}\p{Z}\p{Cs}\p{Co}\p{Cn}]/gu : /[^\x21-\x7e]|[()<>\\";]/g;
  return value.replace(unsafe, '?').slice(0, 255);
}

export interface TlsDetails {
  version: string;
  cipher: string;
  bits: number;
  verified: boolean;
}

export interface TraceInput {
  facts: SessionFacts;
  hostname: string;
  msgid: string;
  rcpts: string[];
  smtputf8: boolean;
  tls?: TlsDetails;
  /** `received-auth` on the listener: over TLS, say whether and as whom the client authenticated. */
  showAuth: boolean;
  /** `mask-src` on the listener: no `from` clause, so the client's name and address stay private. */
  maskSource?: boolean;
  /** The client said EHLO (ESMTP); HELO is plain SMTP. */
  esmtp?: boolean;
  now: Date;
}

/** RFC 3848 protocol names: (E)SMTP, with S for TLS and A for AUTH; UTF8SMTP* with SMTPUTF8. */
function protocol(t: TraceInput): string {
  const base = t.smtputf8 ? 'UTF8SMTP' : t.esmtp === false ? 'SMTP' : 'ESMTP';
  return `${base}${t.tls ? 'S' : ''}${t.facts.authUser ? 'A' : ''}`;
}

/**
 * smtp_message_begin()'s shape: `from HELO (RDNS [ADDRESS])`, then `by NAME (tsmtpd) with PROTO id
 * MSGID`, the TLS parameters and, with received-auth, `auth=yes user=NAME` or `auth=no` on the
 * same line; with mask-src the header starts with its `by` line.
 */
export function traceHeader(t: TraceInput): string {
  const { facts } = t;
  const from = t.maskSource ? ''
    : facts.socket ? 'from localhost (localhost [local])'
    : `from ${headerSafe(facts.helo ?? 'unknown')} (${headerSafe(facts.rdns ?? 'unknown')} [${headerSafe(facts.clientAddress)}])`;
  let by = `\tby ${headerSafe(t.hostname)} (tsmtpd) with ${protocol(t)} id ${t.msgid}`;
  if (t.tls) {
    by += ` (${headerSafe(t.tls.version)}:${headerSafe(t.tls.cipher)}:${t.tls.bits}:${t.tls.verified ? 'YES' : 'NO'})`;
    if (t.showAuth) by += facts.authUser ? ` auth=yes user=${headerSafe(facts.authUser)}` : ' auth=no';
  }
  const lines = [`Received: ${from}`, by];
  // one recipient is named; several would disclose each other (RFC 5321 §7.2)
  if (t.rcpts.length === 1) lines.push(`\tfor <${headerSafe(t.rcpts[0]!, t.smtputf8)}>`);
  lines[lines.length - 1] += ';';
  lines.push(`\t${rfc5322Date(t.now)}`);
  return lines.join('\r\n') + '\r\n';
}

/** The headers added on the local socket and port 587 when the message lacks them: Date, then a 64-bit Message-ID (smtp_tx_dataline). */
export function submissionHeaders(missing: { messageId: boolean; date: boolean }, hostname: string, now: Date): string {
  let out = '';
  if (missing.date) out += `Date: ${rfc5322Date(now)}\r\n`;
  if (missing.messageId) out += `Message-ID: <${randomBytes(8).toString('hex')}@${headerSafe(hostname)}>\r\n`;
  return out;
}
