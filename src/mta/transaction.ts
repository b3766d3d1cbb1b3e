/**
 * The pure parts of a client transaction: the MAIL and RCPT command lines (with only the ESMTP
 * parameters the remote offered) and the mapping of a remote reply to a delivery result.
 */
import type { DeliveryResult } from '../bus/messages.js';
import { xtext, type Capabilities } from './capabilities.js';
import { replyText, type Reply } from './reply-parser.js';
import type { Transaction, TxRecipient } from './session.js';

/** An address with CR, LF or angle brackets would split or forge a command line. */
function unsafe(addr: string): boolean {
  return /[\x00-\x1f\x7f<>]/.test(addr) || addr.length > 512;
}

const nonAscii = (s: string) => /[^\x00-\x7f]/.test(s);

/** An SMTPUTF8 transaction with a UTF-8 address: only a next hop offering SMTPUTF8 may have it. */
export function utf8Addresses(tx: Transaction): boolean {
  return tx.smtputf8 && (nonAscii(tx.sender) || tx.rcpts.some((r) => nonAscii(r.rcpt)));
}

/**
 * A next hop without SMTPUTF8 never gets a UTF-8 address or UTF-8 headers: the recipients fail
 * with RFC 6531's X.6.7 (address) or X.6.9 (header) codes, and the sender gets a bounce.
 */
export function utf8Refusal(kind: 'address' | 'headers'): DeliveryResult {
  return kind === 'address'
    ? { result: 'permfail', enhanced: '5.6.7', detail: 'Non-ASCII addresses not permitted for that sender/recipient: remote host does not support SMTPUTF8' }
    : { result: 'permfail', enhanced: '5.6.9', detail: 'UTF-8 header message cannot be transferred to one or more recipients: remote host does not support SMTPUTF8' };
}

export function mailCommand(tx: Transaction, caps: Capabilities, size: number): { line: string } | DeliveryResult {
  if (unsafe(tx.sender) || tx.rcpts.some((r) => unsafe(r.rcpt))) {
    return { result: 'permfail', enhanced: '5.1.7', detail: 'invalid address in envelope' };
  }
  if (utf8Addresses(tx) && !caps.smtputf8) return utf8Refusal('address');
  const params: string[] = [];
  if (caps.sizeOffered) params.push(`SIZE=${size}`);
  // passed on whenever the client asked for it and the next hop offers it
  if (tx.smtputf8 && caps.smtputf8) params.push('SMTPUTF8');
  if (caps.dsn && tx.ret) params.push(`RET=${tx.ret}`);
  if (caps.dsn && tx.envid) params.push(`ENVID=${xtext(tx.envid)}`);
  return { line: [`MAIL FROM:<${tx.sender}>`, ...params].join(' ') };
}

export function rcptCommand(r: TxRecipient, caps: Capabilities): string {
  const params: string[] = [];
  if (caps.dsn && r.dsn.notify?.length) params.push(`NOTIFY=${r.dsn.notify.join(',')}`);
  if (caps.dsn && r.dsn.orcpt) {
    const semi = r.dsn.orcpt.indexOf(';');
    if (semi > 0) params.push(`ORCPT=${r.dsn.orcpt.slice(0, semi)};${xtext(r.dsn.orcpt.slice(semi + 1))}`);
  }
  return [`RCPT TO:<${r.rcpt}>`, ...params].join(' ');
}

/** 2xx ok, 5xx permfail, anything else tempfail; the server's own words are kept as the detail. */
export function replyResult(r: Reply): DeliveryResult {
  const detail = replyText(r);
  if (r.code >= 200 && r.code < 300) return { result: 'ok', detail };
  if (r.code >= 500) return { result: 'permfail', enhanced: r.enhanced ?? '5.0.0', detail };
  return { result: 'tempfail', enhanced: r.enhanced?.startsWith('4.') ? r.enhanced : '4.0.0', detail };
}
