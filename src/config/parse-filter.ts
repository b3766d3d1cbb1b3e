/** `filter` (builtin, proc, proc-exec, chain, module) and `proc`: the filter declarations. */
import type { Cursor } from './cursor.js';
import { matchTable, optionalMatchTable } from './parse-table.js';
import type { BuiltinCondition, BuiltinDecision, Config, FilterPhase, ProcessSpec } from './types.js';

/**
 * The builtin phases and the conditions each may test, as smtpd's grammar lists them
 * (`filter_phase_*_options`): data submitted later in the session is not there to test yet.
 */
const GLOBAL = ['fcrdns', 'rdns', 'src'];
const AFTER_HELO = [...GLOBAL, 'helo'];
const AFTER_AUTH = [...AFTER_HELO, 'auth'];
const AFTER_MAIL = [...AFTER_AUTH, 'mail-from'];
const PHASE_CONDITIONS: Partial<Record<FilterPhase, string[]>> = {
  connect: GLOBAL, helo: AFTER_HELO, ehlo: AFTER_HELO, auth: AFTER_AUTH, 'mail-from': AFTER_MAIL,
  'rcpt-to': [...AFTER_MAIL, 'rcpt-to'], data: AFTER_MAIL, commit: AFTER_MAIL,
};

function processOptions(c: Cursor, command: string): ProcessSpec & { protocol?: string } {
  const spec: ProcessSpec & { protocol?: string } = { command };
  while (!c.done()) {
    const opt = c.value('user, group, chroot or protocol');
    if ((opt === 'user' || opt === 'group' || opt === 'chroot') && spec[opt] !== undefined) c.fail(`${opt} already specified for this processor`);
    if (opt === 'user') spec.user = c.name('a user name');
    else if (opt === 'group') spec.group = c.name('a group name');
    else if (opt === 'chroot') spec.chroot = c.name('a directory');
    else if (opt === 'protocol') {
      const v = c.value('a protocol version');
      // 0.4 (OpenSMTPD 6.6) to 0.7 (7.x): the shapes that differ are in src/filter/protocol.ts
      if (!['0.4', '0.5', '0.6', '0.7'].includes(v)) c.fail(`unsupported filter protocol: ${v} (0.4 to 0.7)`);
      spec.protocol = v;
    } else c.fail(`syntax error: unknown option: ${opt}`);
  }
  return spec;
}

function condition(c: Cursor, config: Config, word: string): BuiltinCondition {
  switch (word) {
    case 'fcrdns': return { kind: 'fcrdns' };
    case 'rdns': return { kind: 'rdns', table: optionalMatchTable(c, config) };
    case 'auth': return { kind: 'auth', table: optionalMatchTable(c, config) };
    case 'src': case 'helo': case 'mail-from': case 'rcpt-to':
      return { kind: word, table: matchTable(c, config) };
    default: return c.fail(`syntax error: unknown filter condition: ${word}`);
  }
}

function decision(c: Cursor, word: string, phase: FilterPhase): BuiltinDecision {
  switch (word) {
    case 'bypass': return { kind: 'bypass' };
    case 'junk':
      if (phase === 'commit') c.fail('junk is not allowed at commit');
      return { kind: 'junk' };
    // smtpd takes any text here; a reply that is not `4xx text` or `5xx text` becomes
    // `421 Internal server error` when it is given (see replyOf in filter/builtin.ts)
    case 'reject': case 'disconnect': return { kind: word, message: c.name('a reply text') };
    case 'rewrite': return { kind: 'rewrite', value: c.name('a rewrite value') };
    case 'report': return { kind: 'report', message: c.name('a report text') };
    default: return c.fail(`syntax error: unknown filter decision: ${word}`);
  }
}

/** `phase PHASE match [!]CONDITION DECISION`: one condition, as smtpd's grammar has it. */
function builtin(c: Cursor, config: Config, name: string): void {
  const phaseWord = c.value('a filter phase');
  const allowed = Object.hasOwn(PHASE_CONDITIONS, phaseWord) ? PHASE_CONDITIONS[phaseWord as FilterPhase]! : undefined;
  if (!allowed) c.fail(`invalid filter phase: ${phaseWord}`);
  const phase = phaseWord as FilterPhase;
  c.expect('match');
  const negate = c.acceptKind('!');
  const word = c.value('a condition');
  if (!allowed.includes(word)) {
    c.fail(PHASE_CONDITIONS['rcpt-to']!.includes(word)
      ? `syntax error: ${word} cannot be tested at phase ${phase}`
      : `syntax error: unknown filter condition: ${word}`);
  }
  const conditions = [{ negate, condition: condition(c, config, word) }];
  const d = decision(c, c.value('a decision'), phase);
  c.end();
  config.filters.set(name, { name, kind: 'builtin', phase, conditions, decision: d, where: c.where });
}

export function parseFilter(c: Cursor, config: Config): void {
  const name = c.name('a filter name');
  if (config.filters.has(name)) c.fail(`filter already defined: ${name}`);
  const kind = c.value('phase, proc, proc-exec, chain or module');
  switch (kind) {
    case 'phase': return builtin(c, config, name);
    case 'proc':
      const proc = c.name('a proc name');
      if (!config.procs.has(proc)) c.fail(`undefined proc: ${proc}`);
      config.filters.set(name, { name, kind: 'proc', proc, where: c.where });
      return c.end();
    case 'proc-exec': {
      const { protocol, ...process } = processOptions(c, c.name('a command'));
      config.filters.set(name, { name, kind: 'proc-exec', process, protocol, where: c.where });
      return;
    }
    case 'chain': {
      const filters = filterNames(c, config);
      c.end();
      config.filters.set(name, { name, kind: 'chain', filters, where: c.where });
      return;
    }
    case 'module': {
      const path = c.value('a module path');
      const options: string[] = [];
      while (!c.done()) options.push(c.value('a module option'));
      config.filters.set(name, { name, kind: 'module', path, options, where: c.where });
      return;
    }
    default:
      c.fail(`syntax error: unknown filter kind: ${kind}`);
  }
}

export function parseProc(c: Cursor, config: Config): void {
  const name = c.name('a proc name');
  if (config.procs.has(name)) c.fail(`proc already defined: ${name}`);
  const { protocol, ...spec } = processOptions(c, c.name('a command'));
  if (protocol) c.fail('protocol is an option of filter proc-exec');
  config.procs.set(name, { name, ...spec, where: c.where });
}

/** A filter declared above (smtpd's one-pass parser: "no filter exist with that name"). */
export function declaredFilter(c: Cursor, config: Config, name: string): void {
  if (!config.filters.has(name)) c.fail(`undefined filter: ${name}`);
}

/**
 * `{ a, b }` of filter names (a chain): each declared above, none a chain, none twice, no proc
 * twice (parse.y filterel).
 */
export function filterNames(c: Cursor, config: Config): string[] {
  const names: string[] = [];
  const procs = new Set<string>();
  c.braces('filter names', () => {
    const name = c.name('a filter name');
    const f = config.filters.get(name);
    if (!f) c.fail(`undefined filter in chain: ${name}`);
    if (f.kind === 'chain') c.fail(`filter chains cannot be nested: ${name}`);
    if (names.includes(name)) c.fail('a filter may appear only once in a chain');
    if (f.kind === 'proc' && procs.has(f.proc)) c.fail(`a proc may appear only once in a chain: ${f.proc}`);
    if (f.kind === 'proc') procs.add(f.proc);
    names.push(name);
  });
  return names;
}
