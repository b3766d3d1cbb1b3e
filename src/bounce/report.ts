/**
 * Delivery status notifications (RFC 3464): a multipart/report with a human-readable part,
 * the machine-readable message/delivery-status, and the original message's headers (or the
 * whole message for a failure with RET=FULL), written to a file with the original streamed from
 * its own file, never held in memory. A report naming a UTF-8 address is an internationalized
 * one (RFC 6533): message/global-delivery-status, `utf-8` address types, a UTF-8 notice, and
 * it travels with SMTPUTF8.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import type { Clock } from '../clock.js';
import type { DsnParams } from '../queue/envelope.js';
import { headerSafe, rfc5322Date } from '../smtp/trace.js';

export type DsnKind = 'failure' | 'delay' | 'success';

export interface DsnRecipient {
  finalRcpt: string;
  origRcpt?: string;
  /** ORCPT as given: `type;address`. */
  orcpt?: string;
  status: string;
  action: 'failed' | 'delayed' | 'delivered' | 'relayed' | 'expanded';
  diagnostic?: string;
  remoteMta?: string;
}

/** Seconds: how long the message has been delayed, and how long the queue keeps it (its ttl). */
export interface DsnDelay {
  delayedFor: number;
  keptFor: number;
}

export interface DsnInput {
  reportingMta: string;
  sender: string;
  arrivalDate: Date;
  envid?: string;
  ret: 'FULL' | 'HDRS';
  kind: DsnKind;
  /** For a delay notice. */
  delay?: DsnDelay;
  recipients: DsnRecipient[];
  originalPath: string;
  /** Octets of the original at the start of that file (the fs queue keeps envelopes after it); all of it when absent. */
  originalSize?: number;
  clock: Clock;
}

/** bounce.c action_str(): a success notice for a relay without DSN says `relayed`. */
function subject(input: DsnInput): string {
  if (input.kind === 'failure') return 'failed';
  if (input.kind === 'delay') return 'delayed';
  return relayedOnly(input) ? 'relayed' : 'delivered';
}

function relayedOnly(input: DsnInput): boolean {
  return input.recipients.length > 0 && input.recipients.every((r) => r.action === 'relayed');
}

/** bounce.c bounce_duration(): seconds, minutes, hours or days, whichever is the largest whole unit. */
export function duration(seconds: number): string {
  const d = Math.max(0, Math.floor(seconds));
  const [n, unit] = d < 60 ? [d, 'second'] : d < 3600 ? [Math.floor(d / 60), 'minute'] : d < 86400 ? [Math.floor(d / 3600), 'hour'] : [Math.floor(d / 86400), 'day'];
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}

/** RFC 3461 §4.1: NOTIFY=NEVER silences everything; without NOTIFY, failures and delays are reported. */
export function shouldNotify(dsn: DsnParams, kind: DsnKind): boolean {
  const notify = dsn.notify;
  if (!notify) return kind !== 'success';
  if (notify.includes('NEVER')) return false;
  return notify.includes(kind === 'failure' ? 'FAILURE' : kind === 'delay' ? 'DELAY' : 'SUCCESS');
}

/** Where a report goes: nowhere for the null sender, so a report never causes another. */
export function bounceRecipient(sender: string): string | undefined {
  return sender === '' ? undefined : sender;
}

const nonAscii = (s: string) => /[^\x00-\x7f]/.test(s);

/** RFC 6533: a report about a UTF-8 address (the sender's or a recipient's) is internationalized. */
export function reportNeedsUtf8(sender: string, recipients: DsnRecipient[]): boolean {
  return nonAscii(sender) || recipients.some((r) => nonAscii(r.finalRcpt) || nonAscii(r.orcpt ?? ''));
}

/**
 * An address on a report line: UTF-8 kept in an internationalized report (never a `?` for each
 * octet), controls and line breaks never, so nothing can start a line of its own.
 */
function addressText(value: string, utf8: boolean): string {
  return headerSafe(value, utf8);
}

function notice(input: DsnInput, utf8: boolean): string[] {
  const lines = ['Hi!', '', 'This is the MAILER-DAEMON, please DO NOT REPLY to this email.', ''];
  // bounce.c's notice_error, notice_warning(2), notice_success and notice_relay
  if (input.kind === 'failure') lines.push('An error has occurred while attempting to deliver a message for', 'the following list of recipients:', '');
  else if (input.kind === 'delay') lines.push(`A message is delayed for more than ${duration(input.delay?.delayedFor ?? 0)} for the following`, 'list of recipients:', '');
  else if (relayedOnly(input)) lines.push('Your message was relayed to these recipients.', '');
  else lines.push('Your message was successfully delivered to these recipients.', '');
  for (const r of input.recipients) lines.push(`${addressText(r.finalRcpt, utf8)}: ${(r.diagnostic ?? r.status).replace(/[\r\n]+/g, ' ')}`);
  lines.push('');
  if (input.kind === 'delay' && input.delay) {
    lines.push('Please note that this is only a temporary failure report.', `The message is kept in the queue for up to ${duration(input.delay.keptFor)}.`,
      'You DO NOT NEED to re-send the message to these recipients.', '');
  }
  lines.push(input.kind === 'failure' && input.ret === 'FULL' ? 'Below is a copy of the original message:' : 'Below are the headers of the original message:', '');
  return lines;
}

function deliveryStatus(input: DsnInput, utf8: boolean): string[] {
  // RFC 6533 §3: a UTF-8 address is of type utf-8; an ASCII one stays rfc822
  const typed = (addr: string) => (nonAscii(addr) ? `utf-8; ${addressText(addr, true)}` : `rfc822; ${addressText(addr, utf8)}`);
  const lines = [`Reporting-MTA: dns; ${headerSafe(input.reportingMta)}`];
  if (input.envid) lines.push(`Original-Envelope-Id: ${headerSafe(input.envid)}`);
  lines.push(`Arrival-Date: ${rfc5322Date(input.arrivalDate)}`);
  for (const r of input.recipients) {
    lines.push('');
    if (r.orcpt) {
      const [type, ...addr] = r.orcpt.split(';');
      lines.push(`Original-Recipient: ${headerSafe(type ?? 'rfc822')}; ${addressText(addr.join(';'), utf8)}`);
    }
    lines.push(`Final-Recipient: ${typed(r.finalRcpt)}`, `Action: ${r.action}`, `Status: ${r.status}`);
    if (r.remoteMta) lines.push(`Remote-MTA: dns; ${headerSafe(r.remoteMta)}`);
    if (r.diagnostic) lines.push(`Diagnostic-Code: smtp; ${r.diagnostic.replace(/[\r\n]+/g, ' ').slice(0, 900)}`);
  }
  return lines;
}

/** Copy the original's header section (or all of it), line ends normalised to CRLF. */
async function copyOriginal(path: string, size: number | undefined, whole: boolean, write: (s: string | Buffer) => Promise<void>): Promise<void> {
  let rest = Buffer.alloc(0);
  if (size === 0) return;
  for await (const chunk of createReadStream(path, { highWaterMark: 64 * 1024, ...(size !== undefined ? { end: size - 1 } : {}) })) {
    let data = Buffer.concat([rest, chunk as Buffer]);
    let start = 0;
    for (let lf = data.indexOf(0x0a); lf !== -1; lf = data.indexOf(0x0a, start)) {
      const line = data.subarray(start, lf > start && data[lf - 1] === 0x0d ? lf - 1 : lf);
      start = lf + 1;
      if (!whole && line.length === 0) return;
      await write(Buffer.concat([line, Buffer.from('\r\n')]));
    }
    data = data.subarray(start);
    rest = Buffer.from(data);
  }
  if (rest.length) await write(Buffer.concat([rest, Buffer.from('\r\n')]));
}

export async function writeDsnReport(outPath: string, input: DsnInput): Promise<void> {
  const host = headerSafe(input.reportingMta);
  const boundary = `${randomBytes(8).toString('hex')}/${host}`;
  const out = createWriteStream(outPath, { flags: 'wx', mode: 0o600 });
  // listening from the start: an open failure (EEXIST, EACCES) rejects this call instead of
  // escaping into the event loop as an unhandled 'error' event
  const done = finished(out);
  done.catch(() => undefined);
  const write = async (s: string | Buffer) => {
    if (out.errored || out.destroyed) throw out.errored ?? new Error(`${outPath}: report stream closed`);
    if (!out.write(s)) await once(out, 'drain');
  };
  const lines = async (ls: string[]) => write(ls.map((l) => `${l}\r\n`).join(''));
  const whole = input.kind === 'failure' && input.ret === 'FULL';
  const utf8 = reportNeedsUtf8(input.sender, input.recipients);
  try {
    await lines([
      `From: Mailer Daemon <MAILER-DAEMON@${host}>`,
      `To: <${addressText(input.sender, utf8)}>`,
      `Subject: Delivery status notification: ${subject(input)}`,
      `Date: ${rfc5322Date(new Date(input.clock.now()))}`,
      `Message-ID: <${randomBytes(12).toString('hex')}@${host}>`,
      'MIME-Version: 1.0',
      `Content-Type: multipart/report; report-type=${utf8 ? 'global-delivery-status' : 'delivery-status'}; boundary="${boundary}"`,
      'Auto-Submitted: auto-replied',
      '',
      'This is a MIME-encapsulated message.',
      '',
      `--${boundary}`,
      'Content-Description: Notification',
      `Content-Type: text/plain; charset=${utf8 ? 'utf-8' : 'us-ascii'}`,
      '',
      ...notice(input, utf8),
      `--${boundary}`,
      'Content-Description: Delivery Report',
      `Content-Type: message/${utf8 ? 'global-delivery-status' : 'delivery-status'}`,
      '',
      ...deliveryStatus(input, utf8),
      '',
      `--${boundary}`,
      `Content-Description: ${whole ? 'Undelivered Message' : 'Message Headers'}`,
      `Content-Type: ${whole ? (utf8 ? 'message/global' : 'message/rfc822') : utf8 ? 'message/global-headers' : 'text/rfc822-headers'}`,
      '',
    ]);
    await copyOriginal(input.originalPath, input.originalSize, whole, write);
    await lines(['', `--${boundary}--`]);
  } finally {
    out.end();
    await done;
    if (!out.closed) await once(out, 'close');
  }
}
