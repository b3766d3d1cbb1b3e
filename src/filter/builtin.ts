/**
 * OpenSMTPD's builtin filters: `filter NAME phase PHASE match CONDITIONS DECISION`, evaluated in
 * the lka against the session's facts and the tables. A filter matches when ANY of its
 * conditions holds (each negatable); the engine applies its decision like any other filter's.
 */
import type { SessionFacts, WireReply } from '../bus/messages.js';
import type { BuiltinCondition, Config, FilterDecl, FilterPhase } from '../config/types.js';
import type { Decision } from './api.js';
import type { TableSet } from '../table/types.js';

export interface PhaseInput {
  facts: SessionFacts;
  phase: FilterPhase;
  /** The phase's parameter: the HELO name, the MAIL FROM or RCPT TO address. */
  param: string;
  /** The transaction's sender, for `mail-from` conditions in later phases. */
  sender?: string;
}

type Builtin = Extract<FilterDecl, { kind: 'builtin' }>;

/** The builtin filters of a listener's filter or chain, in order (chains flattened). */
export function listenerFilters(config: Config, name: string | undefined, seen = new Set<string>()): FilterDecl[] {
  if (!name || seen.has(name)) return [];
  seen.add(name);
  const f = config.filters.get(name);
  if (!f) return [];
  return f.kind === 'chain' ? f.filters.flatMap((n) => listenerFilters(config, n, seen)) : [f];
}

async function holds(c: BuiltinCondition, tables: TableSet, input: PhaseInput): Promise<boolean> {
  const { facts } = input;
  const table = async (ref: { table: string; regex: boolean }, service: 'domain' | 'netaddr' | 'string' | 'mailaddr', key: string) => {
    const t = tables.get(ref.table);
    if (!t) throw new Error(`table ${ref.table} is not available`);
    return t.match(ref.regex ? 'regex' : service, key);
  };
  switch (c.kind) {
    case 'fcrdns':
      return facts.fcrdns === 'pass';
    case 'rdns':
      return c.table ? !!facts.rdns && table(c.table, 'domain', facts.rdns) : !!facts.rdns;
    case 'src':
      return table(c.table, 'netaddr', facts.clientAddress);
    case 'helo': {
      // at the helo and ehlo phases the name being given is the one to judge
      const helo = input.phase === 'helo' || input.phase === 'ehlo' ? input.param : facts.helo;
      return !!helo && table(c.table, 'domain', helo);
    }
    case 'auth':
      return c.table ? !!facts.authUser && table(c.table, 'string', facts.authUser) : !!facts.authUser;
    case 'mail-from': {
      const sender = input.phase === 'mail-from' ? input.param : input.sender;
      return sender !== undefined && table(c.table, 'mailaddr', sender);
    }
    case 'rcpt-to':
      return input.phase === 'rcpt-to' && table(c.table, 'mailaddr', input.param);
  }
}

/** What smtpd sends when a filter's reply is unusable (smtp_session.c, IMSG_FILTER_SMTP_PROTOCOL). */
export const INVALID_FILTER_REPLY: WireReply = { code: 421, text: 'Internal server error' };

/**
 * A filter's reject/disconnect text as the reply to send: `550 5.7.1 go away` gives the code, the
 * enhanced code (`x.7.1` when none is written) and the text. smtpd sends only a text that passes
 * valid_smtp_response() and starts with 4 or 5 (`550 text`, not `550-text` nor `550. text`);
 * anything else becomes `421 Internal server error`, which also ends the session.
 */
export function replyOf(message: string): WireReply {
  const m = /^([45]\d\d) (?:([45]\.\d{1,3}\.\d{1,3})(?: |$))?(.*)$/s.exec(message);
  if (!m || message.length < 5) return INVALID_FILTER_REPLY;
  return { code: Number(m[1]), enhanced: m[2] ?? `${m[1]![0]}.7.1`, text: m[3]!.replace(/[\r\n]/g, ' ').trim() || 'Rejected' };
}

async function matches(f: Builtin, tables: TableSet, input: PhaseInput): Promise<boolean> {
  for (const { negate, condition } of f.conditions) {
    if ((await holds(condition, tables, input)) !== negate) return true;
  }
  return false;
}

/** The builtin filter's decision for this phase, or null when it does not apply or match. */
export async function builtinDecision(f: Builtin, tables: TableSet, input: PhaseInput): Promise<Decision | { decision: 'bypass' } | null> {
  if (f.phase !== input.phase || !(await matches(f, tables, input))) return null;
  const d = f.decision;
  switch (d.kind) {
    case 'bypass': return { decision: 'bypass' };
    case 'junk': return { decision: 'junk' };
    case 'rewrite': return { decision: 'rewrite', value: d.value };
    case 'report': return { decision: 'report', message: d.message };
    case 'reject': case 'disconnect': return { decision: d.kind, reply: d.message };
  }
}
