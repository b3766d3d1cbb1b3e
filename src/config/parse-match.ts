/** `match CRITERIA action NAME | reject`: per-recipient rules, each criterion negatable. */
import type { Cursor } from './cursor.js';
import { matchTable, optionalMatchTable } from './parse-table.js';
import type { Config, MatchCriterion, MatchRule } from './types.js';

function fromCriterion(c: Cursor, config: Config): MatchCriterion {
  const what = c.value('any, local, socket, src, rdns, auth or mail-from after from');
  switch (what) {
    case 'any': return { kind: 'from-any' };
    case 'local': return { kind: 'from-local' };
    case 'socket': return { kind: 'from-socket' };
    case 'src': return { kind: 'from-src', table: matchTable(c, config) };
    case 'rdns': return { kind: 'from-rdns', table: optionalMatchTable(c, config) };
    case 'auth': return { kind: 'from-auth', table: optionalMatchTable(c, config) };
    case 'mail-from': return { kind: 'from-mail-from', table: matchTable(c, config) };
    default: return c.fail(`syntax error: unknown from criterion: ${what}`);
  }
}

function forCriterion(c: Cursor, config: Config): MatchCriterion {
  const what = c.value('any, local, domain or rcpt-to after for');
  switch (what) {
    case 'any': return { kind: 'for-any' };
    case 'local': return { kind: 'for-local' };
    case 'domain': return { kind: 'for-domain', table: matchTable(c, config) };
    case 'rcpt-to': return { kind: 'for-rcpt-to', table: matchTable(c, config) };
    default: return c.fail(`syntax error: unknown for criterion: ${what}`);
  }
}

function criterion(c: Cursor, config: Config, word: string): MatchCriterion {
  switch (word) {
    case 'from': return fromCriterion(c, config);
    case 'for': return forCriterion(c, config);
    case 'tag': return { kind: 'tag', table: matchTable(c, config) };
    case 'helo': return { kind: 'helo', table: matchTable(c, config) };
    case 'auth': return { kind: 'auth', table: optionalMatchTable(c, config) };
    case 'mail-from': return { kind: 'mail-from', table: matchTable(c, config) };
    case 'rcpt-to': return { kind: 'rcpt-to', table: matchTable(c, config) };
    case 'tls': return { kind: 'tls' };
    default: return c.fail(`syntax error: unknown match criterion: ${word}`);
  }
}

export function parseMatch(c: Cursor, config: Config): void {
  const rule: MatchRule = { criteria: [], decision: { kind: 'reject' }, where: c.where };
  const seen = new Set<string>();
  let decided = false;
  while (!c.done()) {
    if (c.accept('action')) {
      const action = c.name('an action name');
      // declared above, as smtpd's one-pass parser wants ("no such dispatcher")
      if (!config.actions.has(action)) c.fail(`undefined action: ${action}`);
      rule.decision = { kind: 'action', action };
      decided = true;
      break;
    }
    if (c.accept('reject')) {
      decided = true;
      break;
    }
    const negate = c.acceptKind('!');
    const word = c.value('a match criterion');
    if (seen.has(word)) c.fail(`syntax error: ${word} given twice in one rule`);
    seen.add(word);
    rule.criteria.push({ negate, criterion: criterion(c, config, word) });
  }
  if (!decided) c.fail('syntax error: match rule needs "action NAME" or "reject"');
  c.end();
  // as smtpd: `from` defaults to local and `for` to local
  if (!seen.has('from')) rule.criteria.unshift({ negate: false, criterion: { kind: 'from-local' } });
  if (!seen.has('for')) rule.criteria.push({ negate: false, criterion: { kind: 'for-local' } });
  config.rules.push(rule);
}
