/**
 * The name the server gives a session (banner, EHLO, Received: by): a listener's `hostnames <t>`
 * maps its local address to a name, as OpenSMTPD's smtp_lookup_servername() asks lka_addrname()
 * (the addrname service, keyed by sa_to_text() of the address). Without a match, or when the
 * table fails, the session keeps the listener's `hostname`, as smtpd keeps it on LKA_PERMFAIL
 * and LKA_TEMPFAIL alike.
 */
import type { SessionFacts } from '../bus/messages.js';
import type { Config } from '../config/types.js';
import { log } from '../log.js';
import type { TableSet } from '../table/types.js';

export async function listenerServerName(config: Config, tables: TableSet, facts: SessionFacts): Promise<{ serverName?: string }> {
  const table = config.listeners[facts.listener]?.hostnames;
  if (!table || facts.socket) return {};
  const key = facts.localAddress.includes(':') ? `[${facts.localAddress}]` : facts.localAddress;
  try {
    const name = await tables.get(table)?.lookupString('addrname', key);
    return name ? { serverName: name } : {};
  } catch (err) {
    log('warn', facts.sessionId, 'lka', 'table-error', { table, key, error: (err as Error).message });
    return {};
  }
}
