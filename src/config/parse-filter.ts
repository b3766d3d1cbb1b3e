/** `filter` (builtin, proc, proc-exec, chain, module) and `proc`: the filter declarations. */
import type { Cursor } from './cursor.js';
import { tableOrLiteral } from './parse-match.js';
import type { BuiltinCondition, BuiltinDecision, Config, FilterPhase, ProcessSpec, TableRef } from './types.js';

const BUILTIN_PHASES: FilterPhase[] = ['connect', 'helo', 'ehlo', 'auth', 'mail-from', 'rcpt-to', 'data', 'commit'];

function processOptions(c: Cursor, command: string): ProcessSpec & { protocol?: string } {
  const spec: ProcessSpec & { protocol?: string } = { command };
  while (!c.done()) {
    const opt = c.value('user, group, chroot or protocol');
    if (opt === 'user') spec.user = c.value('a user name');
    else if (opt === 'group') spec.group = c.value('a group name');
    else if (opt === 'chroot') spec.chroot = c.value('a directory');
    else if (opt === 'protocol') {
      const v = c.value('a protocol version');
      // 0.4 (OpenSMTPD 6.6) to 0.7 (7.x): the shapes that differ are in src/filter/protocol.ts
      if (!['0.4', '0.5', '0.6', '0.7'].includes(v)) c.fail(`unsupported filter protocol: ${v} (0.4 to 0.7)`);
      spec.protocol = v;
    } else c.fail(`syntax error: unknown option: ${opt}`);
  }
  return spec;
}

function optionalRef(c: Cursor, config: Config): TableRef | undefined {
  const regex = c.accept('regex');
  if (!regex && !c.is('table') && !c.is('string')) return undefined;
  return tableOrLiteral(c, config, regex);
}

function condition(c: Cursor, config: Config, word: string): BuiltinCondition {
  switch (word) {
    case 'fcrdns': return { kind: 'fcrdns' };
    case 'rdns': return { kind: 'rdns', table: optionalRef(c, config) };
    case 'auth': return { kind: 'auth', table: optionalRef(c, config) };
    case 'src': case 'helo': case 'mail-from': case 'rcpt-to':
      return { kind: word, table: tableOrLiteral(c, config, c.accept('regex')) };
    default: return c.fail(`syntax error: unknown filter condition: ${word}`);
  }
}

function decision(c: Cursor, word: string, phase: FilterPhase): BuiltinDecision {
  switch (word) {
    case 'bypass': return { kind: 'bypass' };
    case 'junk':
      if (phase === 'commit') c.fail('junk is not allowed at commit');
      return { kind: 'junk' };
    case 'reject': case 'disconnect': {
      const message = c.value('a reply text');
      if (!/^[45]\d\d[ -]/.test(message)) c.fail(`${word} message must start with a 4xx or 5xx code`);
      return { kind: word, message };
    }
    case 'rewrite': return { kind: 'rewrite', value: c.value('a rewrite value') };
    case 'report': return { kind: 'report', message: c.value('a report text') };
    default: return c.fail(`syntax error: unknown filter decision: ${word}`);
  }
}

function builtin(c: Cursor, config: Config, name: string): void {
  const phaseWord = c.value('a filter phase');
  if (!(BUILTIN_PHASES as string[]).includes(phaseWord)) c.fail(`invalid filter phase: ${phaseWord}`);
  const phase = phaseWord as FilterPhase;
  c.expect('match');
  const conditions: { negate: boolean; condition: BuiltinCondition }[] = [];
  for (;;) {
    const negate = c.acceptKind('!');
    const word = c.value('a condition or a decision');
    if (!negate && ['bypass', 'junk', 'reject', 'disconnect', 'rewrite', 'report'].includes(word)) {
      if (conditions.length === 0) c.fail('syntax error: filter needs at least one condition');
      const d = decision(c, word, phase);
      c.end();
      config.filters.set(name, { name, kind: 'builtin', phase, conditions, decision: d, where: c.where });
      return;
    }
    conditions.push({ negate, condition: condition(c, config, word) });
  }
}

export function parseFilter(c: Cursor, config: Config): void {
  const name = c.value('a filter name');
  if (config.filters.has(name)) c.fail(`filter already defined: ${name}`);
  const kind = c.value('phase, proc, proc-exec, chain or module');
  switch (kind) {
    case 'phase': return builtin(c, config, name);
    case 'proc':
      config.filters.set(name, { name, kind: 'proc', proc: c.value('a proc name'), where: c.where });
      return c.end();
    case 'proc-exec': {
      const { protocol, ...process } = processOptions(c, c.value('a command'));
      config.filters.set(name, { name, kind: 'proc-exec', process, protocol, where: c.where });
      return;
    }
    case 'chain': {
      const filters = c.list('filter names');
      c.end();
      if (filters.length === 0) c.fail('syntax error: empty filter chain');
      if (new Set(filters).size !== filters.length) c.fail('a filter may appear only once in a chain');
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
  const name = c.value('a proc name');
  if (config.procs.has(name)) c.fail(`proc already defined: ${name}`);
  const { protocol, ...spec } = processOptions(c, c.value('a command'));
  if (protocol) c.fail('protocol is an option of filter proc-exec');
  config.procs.set(name, { name, ...spec, where: c.where });
}
