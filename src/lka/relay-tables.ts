/**
 * The tables relay actions name, each with the one use the mta may make of it: the lka answers
 * the mta's lookups in these and nothing else (it cannot, say, read the AUTH credentials table
 * of a listener through a lookup).
 */
import type { Config } from '../config/types.js';

export function relayTableUse(config: Config): Set<string> {
  const uses = new Set<string>();
  for (const action of config.actions.values()) {
    const r = action.relay;
    if (!r) continue;
    if (r.hostTable) uses.add(`${r.hostTable}|source`);
    if (r.domainTable) uses.add(`${r.domainTable}|relayhost`);
    if (r.srcTable) uses.add(`${r.srcTable}|source`);
    if (r.heloSrc) uses.add(`${r.heloSrc}|addrname`);
    if (r.authTable) uses.add(`${r.authTable}|credentials`);
  }
  return uses;
}
