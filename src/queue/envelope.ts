/**
 * The envelope: one recipient of one message, with everything the later roles need to deliver
 * it, retry it and bounce it. Plain data, so it crosses the bus and lands on disk as it is.
 */

/** DSN parameters of RFC 3461, kept from MAIL FROM and RCPT TO. */
export interface DsnParams {
  /** NOTIFY: NEVER alone, or any of SUCCESS, FAILURE, DELAY; absent means the default (FAILURE,DELAY). */
  notify?: ('NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY')[];
  /** ORCPT: `addr-type;xtext-decoded address`. */
  orcpt?: string;
  ret?: 'FULL' | 'HDRS';
  envid?: string;
}

/** Who the message is delivered as, for local deliveries (filled in by the lka's expansion). */
export interface UserInfo {
  username: string;
  uid: number;
  gid: number;
  directory: string;
}

export type EnvelopeKind = 'mda' | 'mta' | 'bounce';

export interface Envelope {
  /** 16 hex digits: the message id (8) then 8 for the envelope. */
  id: string;
  /** 8 hex digits. */
  msgid: string;
  kind: EnvelopeKind;
  /** Name of the action that matched this recipient. */
  action: string;
  /** Listener tag, if the listener had one. */
  tag?: string;
  /** Name this server gave itself on the listener. */
  hostname: string;
  helo: string;
  /** Client address as smtpd.conf matches it: `1.2.3.4`, `::1`, or `local` for the socket. */
  clientAddress: string;
  clientRdns?: string;
  authUser?: string;
  /** Envelope sender, `''` for the null sender `<>`. */
  sender: string;
  /** The final recipient after expansion. */
  rcpt: string;
  /** The recipient as the client gave it in RCPT TO. */
  origRcpt: string;
  /** Local delivery: the user, set by expansion; the mda method may also be a command or file. */
  user?: UserInfo;
  /** For expansion results that are not mailboxes: `|command` or `/file` targets. */
  mdaTarget?: { kind: 'command' | 'file'; value: string };
  /** mda: the `+tag` the expansion stripped from the user part (OpenSMTPD mda-subaddress, $EXTENSION). */
  subaddress?: string;
  dsn: DsnParams;
  smtputf8: boolean;
  /** The message was marked as spam by a filter. */
  junk: boolean;
  /** Seconds since the epoch. */
  createdAt: number;
  /** Seconds. */
  ttl: number;
  tries: number;
  lastTry: number;
  /** Seconds since the epoch of the last delay notice sent, 0 if none. */
  lastWarn: number;
  lastError?: string;
  /** For bounce envelopes: the envelope whose failure this reports. */
  bounce?: { kind: 'failure' | 'delay' | 'success'; reportedEnvelopeId: string };
}

const HEX8 = /^[0-9a-f]{8}$/;
const HEX16 = /^[0-9a-f]{16}$/;

export function isMsgid(s: string): boolean {
  return HEX8.test(s);
}

export function isEvpid(s: string): boolean {
  return HEX16.test(s);
}

/** The message id is the high 32 bits of an envelope id, as in OpenSMTPD. */
export function msgidOf(evpid: string): string {
  return evpid.slice(0, 8);
}

/**
 * The error line an envelope keeps (smtpctl's errorline, `show queue`'s last column): a peer's
 * reply as it came (`450 4.2.0 mailbox busy`, as mta.c keeps it), else tsmtpd's own words after
 * their enhanced code. The code is never written twice.
 */
export function errorLine(enhanced: string, detail: string): string {
  if (/^\d{3}(?:[ -]|$)/.test(detail) || detail.split(/\s+/).includes(enhanced)) return detail;
  return `${enhanced} ${detail}`;
}
