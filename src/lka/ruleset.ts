/**
 * The ruleset: smtpd.conf's `match` rules evaluated per recipient, first match wins. Every
 * criterion of a rule must hold; a table that cannot answer makes the rule a temporary failure
 * rather than a guess, so a broken table never turns into a relay or a bounce.
 */
import type { SessionFacts } from '../bus/messages.js';
import type { Config, MatchCriterion, MatchRule, TableRef } from '../config/types.js';
import type { TableService, TableSet } from '../table/types.js';
import { trace } from '../trace.js';

export interface RuleInput {
  facts: SessionFacts;
  /** Envelope sender, '' for `<>`. */
  sender: string;
  /** The recipient, with its domain in lower-case A-label form. */
  rcpt: string;
  /** Recipients produced by alias or forward expansion match as coming `from local`. */
  internal?: boolean;
}

export type RuleOutcome =
  | { kind: 'action'; action: string; rule: MatchRule }
  | { kind: 'reject'; rule: MatchRule | null }
  | { kind: 'tempfail'; reason: string };

export async function evaluateRules(config: Config, tables: TableSet, input: RuleInput): Promise<RuleOutcome> {
  for (const rule of config.rules) {
    let matched: boolean;
    try {
      matched = await matchRule(rule, tables, input);
    } catch (err) {
      return { kind: 'tempfail', reason: `${rule.where.file}:${rule.where.line}: ${(err as Error).message}` };
    }
    // lka.c under TRACE_RULES: which rule decided
    trace('rules', null, 'lka', { rule: `${rule.where.file}:${rule.where.line}`, rcpt: input.rcpt, matched });
    if (!matched) continue;
    return rule.decision.kind === 'reject' ? { kind: 'reject', rule } : { kind: 'action', action: rule.decision.action, rule };
  }
  return { kind: 'reject', rule: null };
}

async function matchRule(rule: MatchRule, tables: TableSet, input: RuleInput): Promise<boolean> {
  const kinds = new Set(rule.criteria.map((c) => c.criterion.kind));
  // smtpd.conf(5): a rule without `from` means `from local`, without `for` means `for local`;
  // `from mail-from` and `for rcpt-to` imply `from any` and `for any`
  if (![...kinds].some((k) => k.startsWith('from-'))) {
    if (!(await criterion({ kind: 'from-local' }, tables, input))) return false;
  }
  if (![...kinds].some((k) => k.startsWith('for-'))) {
    if (!(await criterion({ kind: 'for-local' }, tables, input))) return false;
  }
  for (const { negate, criterion: c } of rule.criteria) {
    if ((await criterion(c, tables, input)) === negate) return false;
  }
  return true;
}

function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}

async function criterion(c: MatchCriterion, tables: TableSet, input: RuleInput): Promise<boolean> {
  const { facts } = input;
  // expansion results are `from local` whatever the session was (OpenSMTPD's EF_INTERNAL)
  const client = input.internal ? 'local' : facts.clientAddress;
  switch (c.kind) {
    case 'from-any':
    case 'for-any':
      return true;
    case 'from-local':
      return client === 'local' || (await builtin(tables, 'localhost', 'netaddr', client));
    case 'from-socket':
      return facts.socket && !input.internal;
    case 'from-src':
      return lookup(tables, c.table, 'netaddr', client);
    case 'from-rdns':
      return c.table ? !!facts.rdns && lookup(tables, c.table, 'domain', facts.rdns) : !!facts.rdns;
    case 'from-auth':
    case 'auth':
      if (!facts.authUser) return false;
      return c.table ? lookup(tables, c.table, facts.authUser.includes('@') ? 'mailaddr' : 'string', facts.authUser) : true;
    case 'from-mail-from':
    case 'mail-from':
      return lookup(tables, c.table, 'mailaddr', input.sender);
    case 'for-local':
      return builtin(tables, 'localnames', 'domain', domainOf(input.rcpt));
    case 'for-domain':
      return lookup(tables, c.table, 'domain', domainOf(input.rcpt));
    case 'for-rcpt-to':
    case 'rcpt-to':
      return lookup(tables, c.table, 'mailaddr', input.rcpt);
    case 'tag':
      return !!facts.tag && lookup(tables, c.table, 'string', facts.tag);
    case 'helo':
      return !!facts.helo && lookup(tables, c.table, 'domain', facts.helo);
    case 'tls':
      // OpenSMTPD leaves `tls` unimplemented (always a tempfail); here it means what it says
      return facts.tls;
  }
}

async function lookup(tables: TableSet, ref: TableRef, service: TableService, key: string): Promise<boolean> {
  const table = tables.get(ref.table);
  if (!table) throw new Error(`table ${ref.table} is not available`);
  return table.match(ref.regex ? 'regex' : service, key);
}

function builtin(tables: TableSet, name: string, service: TableService, key: string): Promise<boolean> {
  return lookup(tables, { table: name, regex: false }, service, key);
}
