/**
 * The smtpd-filters(7) line protocol, as text in and text out: the handshake tsmtpd sends, the
 * report and filter lines, and the parsing of what a filter answers. No process, no socket.
 *
 * Versions: tsmtpd speaks 0.7 (OpenSMTPD 7.x) by default. Where older filters expect another
 * shape, the version a line carries decides it, as libopensmtpd does:
 *  - before 0.5, a filter answers `token|session` instead of `session|token`;
 *  - before 0.6, tx-mail and tx-rcpt carry `address|result` instead of `result|address`;
 *  - before 0.7, link-auth carries `username|result` instead of `result|username`.
 */

export const DEFAULT_VERSION = '0.7';
export const SUBSYSTEM = 'smtp-in';

export type FilterDecisionWord = 'proceed' | 'junk' | 'reject' | 'disconnect' | 'rewrite' | 'report';

export type FilterOutput =
  | { kind: 'register'; stream: 'report' | 'filter'; subsystem: string; event: string }
  | { kind: 'register-ready' }
  | { kind: 'result'; session: string; token: string; decision: FilterDecisionWord; param: string }
  | { kind: 'dataline'; session: string; token: string; line: string }
  | { kind: 'invalid'; reason: string };

const DECISIONS = new Set<string>(['proceed', 'junk', 'reject', 'disconnect', 'rewrite', 'report']);
const ID = /^[0-9a-f]{1,16}$/i;

/** Versions compare as major.minor numbers: '0.10' is after '0.7'. */
export function versionAtLeast(version: string, wanted: string): boolean {
  const [a1 = 0, a2 = 0] = version.split('.').map(Number);
  const [b1 = 0, b2 = 0] = wanted.split('.').map(Number);
  return a1 !== b1 ? a1 > b1 : a2 >= b2;
}

export function handshake(opts: { smtpdVersion: string; version: string; sessionTimeoutSec: number; admd?: string }): string[] {
  return [
    `config|smtpd-version|${opts.smtpdVersion}`,
    `config|protocol|${opts.version}`,
    `config|smtp-session-timeout|${opts.sessionTimeoutSec}`,
    ...(opts.admd ? [`config|admd|${opts.admd}`] : []),
    `config|subsystem|${SUBSYSTEM}`,
    'config|ready',
  ];
}

/**
 * A field may hold neither a line break (it would end the line) nor, unless it is the last, a
 * `|`. Every value here comes from a validated session, so this only guards the invariant.
 */
function fields(params: readonly string[]): string {
  return params
    .map((p, i) => {
      const flat = p.replace(/[\r\n]/g, ' ');
      return i < params.length - 1 ? flat.replace(/\|/g, ' ') : flat;
    })
    .join('|');
}

export function timestamp(ms: number): string {
  return (ms / 1000).toFixed(6);
}

/** Report events whose fields moved between protocol versions are reordered for older filters. */
export function reportLine(version: string, nowMs: number, session: string, event: string, params: readonly string[]): string {
  let p = params;
  if (event === 'link-auth' && !versionAtLeast(version, '0.7')) p = [params[1] ?? '', params[0] ?? ''];
  if ((event === 'tx-mail' || event === 'tx-rcpt') && !versionAtLeast(version, '0.6')) p = [params[0] ?? '', params[2] ?? '', params[1] ?? ''];
  const head = `report|${version}|${timestamp(nowMs)}|${SUBSYSTEM}|${event}|${session}`;
  return p.length ? `${head}|${fields(p)}` : head;
}

export function filterLine(version: string, nowMs: number, phase: string, session: string, token: string, params: readonly string[]): string {
  // the parameter field is always there, empty for phases without one (data, commit...), as
  // OpenSMTPD writes it and libopensmtpd expects it
  return `filter|${version}|${timestamp(nowMs)}|${SUBSYSTEM}|${phase}|${session}|${token}|${fields(params)}`;
}

/** One line a filter wrote on its stdout; `version` is the one tsmtpd speaks to it. */
export function parseOutput(line: string, version: string): FilterOutput {
  const parts = line.split('|');
  const tokenFirst = !versionAtLeast(version, '0.5');
  switch (parts[0]) {
    case 'register': {
      if (parts.length === 2 && parts[1] === 'ready') return { kind: 'register-ready' };
      const [, stream, subsystem, event] = parts;
      if (parts.length !== 4 || (stream !== 'report' && stream !== 'filter') || !subsystem || !event) {
        return { kind: 'invalid', reason: 'malformed register line' };
      }
      return { kind: 'register', stream, subsystem, event };
    }
    case 'filter-result':
    case 'filter-dataline': {
      if (parts.length < 4) return { kind: 'invalid', reason: `malformed ${parts[0]} line` };
      const [a = '', b = ''] = [parts[1], parts[2]];
      const [session, token] = tokenFirst ? [b, a] : [a, b];
      if (!ID.test(session) || !ID.test(token)) return { kind: 'invalid', reason: `bad session or token in ${parts[0]}` };
      const rest = parts.slice(3).join('|');
      if (parts[0] === 'filter-dataline') return { kind: 'dataline', session, token, line: rest };
      const bar = rest.indexOf('|');
      const decision = bar < 0 ? rest : rest.slice(0, bar);
      const param = bar < 0 ? '' : rest.slice(bar + 1);
      if (!DECISIONS.has(decision)) return { kind: 'invalid', reason: `unknown decision: ${decision.slice(0, 40)}` };
      if ((decision === 'reject' || decision === 'disconnect') && !/^[45]\d\d(?:[ -]|$)/.test(param)) {
        return { kind: 'invalid', reason: `${decision} needs a 4xx or 5xx reply` };
      }
      if (decision === 'rewrite' && param === '') return { kind: 'invalid', reason: 'rewrite needs a parameter' };
      return { kind: 'result', session, token, decision: decision as FilterDecisionWord, param };
    }
    default:
      return { kind: 'invalid', reason: `unknown line: ${line.slice(0, 40)}` };
  }
}
