/**
 * MAIL FROM policy: on a listener with `senders <table>`, an authenticated user may only use the
 * sender addresses the mailaddrmap table lists for them, matched as OpenSMTPD's
 * lka_mailaddrmap() matches them (mailaddr_match(), hostname_match()). `masquerade` changes what
 * is written (From:, in the smtp session), not what is allowed.
 */
import type { Res, SessionFacts } from '../bus/messages.js';
import type { Config } from '../config/types.js';
import type { TableSet } from '../table/types.js';

/** IMSG_SMTP_CHECK_SENDER's LKA_PERMFAIL answer is `530 Sender rejected`. */
const REJECTED = { code: 530, enhanced: '5.7.0', text: 'Sender rejected' };

/** text_to_mailaddr(): split at the last `@`; `@domain` has no user, `user` no domain. */
function mailaddr(text: string): { user: string; domain: string } {
  const at = text.lastIndexOf('@');
  return at < 0 ? { user: text, domain: '' } : { user: text.slice(0, at), domain: text.slice(at + 1) };
}

/**
 * hostname_match(): case-blind, a `*` skips to the next occurrence of the character after it
 * (no backtracking: `*.example.org` matches one label, as in smtpd).
 */
export function hostnameMatch(hostname: string, pattern: string): boolean {
  const h = hostname.toLowerCase();
  const p = pattern.toLowerCase();
  let i = 0;
  let j = 0;
  while (j < p.length && i < h.length) {
    if (p[j] === '*') {
      while (p[j] === '*') j++;
      while (i < h.length && h[i] !== p[j]) i++;
      continue;
    }
    if (p[j] !== h[i]) return false;
    i++;
    j++;
  }
  return i === h.length && j === p.length;
}

/** mailaddr_match(): does the sender match one entry of the user's list? */
export function senderMatches(sender: string, entry: string, delim: string): boolean {
  const m1 = mailaddr(sender);
  const m2 = mailaddr(entry);
  // `@` alone: any sender, the null sender included
  if (m2.user === '' && m2.domain === '') return true;
  if (m2.domain && !hostnameMatch(m1.domain, m2.domain)) return false;
  if (m2.user) {
    // an entry without a tag allows the user's tagged addresses too
    const user = !m2.user.includes(delim) && m1.user.includes(delim) ? m1.user.slice(0, m1.user.indexOf(delim)) : m1.user;
    if (user.toLowerCase() !== m2.user.toLowerCase()) return false;
  }
  return true;
}

export async function checkSender(config: Config, tables: TableSet, facts: SessionFacts, sender: string): Promise<Res<'smtp.mailfrom.check'>> {
  const listener = config.listeners[facts.listener];
  const senders = listener?.senders;
  if (!senders || !facts.authUser) return { result: 'accept' };
  const table = tables.get(senders.table);
  if (!table) return { result: 'tempfail', reply: { code: 451, enhanced: '4.3.0', text: 'Temporary failure' } };
  const owned = await table.lookupMailaddrMap(facts.authUser);
  if (!owned) return { result: 'reject', reply: REJECTED };
  const delim = config.smtp.subAddrDelim;
  return owned.some((entry) => senderMatches(sender, entry, delim)) ? { result: 'accept' } : { result: 'reject', reply: REJECTED };
}
