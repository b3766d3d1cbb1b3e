/**
 * MAIL FROM policy: on a listener with `senders <table>`, an authenticated user may only use the
 * sender addresses the mailaddrmap table lists for them (`masquerade` also lets them use the
 * null sender and their own name unchanged, as smtpd.conf(5) describes).
 */
import type { Res, SessionFacts } from '../bus/messages.js';
import type { Config } from '../config/types.js';
import type { TableSet } from '../table/types.js';

const NOT_OWNED = { code: 553, enhanced: '5.7.1', text: 'Sender address rejected: not owned by the authenticated user' };

export async function checkSender(config: Config, tables: TableSet, facts: SessionFacts, sender: string): Promise<Res<'smtp.mailfrom.check'>> {
  const listener = config.listeners[facts.listener];
  const senders = listener?.senders;
  if (!senders || !facts.authUser) return { result: 'accept' };
  const table = tables.get(senders.table);
  if (!table) return { result: 'tempfail', reply: { code: 451, enhanced: '4.3.0', text: 'Temporary failure' } };
  if (sender === '' && senders.masquerade) return { result: 'accept' };
  const owned = await table.lookupMailaddrMap(facts.authUser);
  if (!owned) return { result: 'reject', reply: NOT_OWNED };
  const lower = sender.toLowerCase();
  const domain = lower.slice(lower.lastIndexOf('@') + 1);
  const ok = owned.some((p) => {
    const pattern = p.toLowerCase();
    return pattern === lower || (pattern.startsWith('@') && pattern.slice(1) === domain);
  });
  return ok ? { result: 'accept' } : { result: 'reject', reply: NOT_OWNED };
}
