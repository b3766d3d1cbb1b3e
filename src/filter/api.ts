/**
 * The TypeScript filter API: what a module named by `filter NAME module "path.js" [options]`
 * exports and what it is given. A module's default export is a factory:
 *
 *   import type { FilterFactory } from 'tsmtpd/filter';
 *   const create: FilterFactory = (options, services) => ({
 *     phases: {
 *       async 'mail-from'(ev) {
 *         const mx = await services.dns.mx(ev.param.split('@')[1] ?? '');
 *         return mx.status === 'nxdomain' ? reject('550 5.1.8 Sender domain does not exist') : proceed();
 *       },
 *     },
 *   });
 *   export default create;
 *
 * Handlers run in the lka, on the daemon's event loop, so they must never block it; every
 * outside answer (DNS, tables) comes through `services` as a promise the daemon fulfils. A
 * handler that throws, or does not answer within its deadline, fails that one command with a
 * temporary error (451/421 as the phase needs), never the daemon.
 */
import type { Answer, MxRecord } from '../dns/resolver.js';
import type { FilterPhase } from '../config/types.js';

export type { Answer, MxRecord, FilterPhase };

export type Decision =
  | { decision: 'proceed' }
  | { decision: 'junk' }
  | { decision: 'reject'; reply: string }
  | { decision: 'disconnect'; reply: string }
  | { decision: 'rewrite'; value: string }
  | { decision: 'report'; message: string };

export const proceed = (): Decision => ({ decision: 'proceed' });
export const junk = (): Decision => ({ decision: 'junk' });
/** `reply` is a whole SMTP reply: `550 5.7.1 text`; a 421 also ends the session. */
export const reject = (reply: string): Decision => ({ decision: 'reject', reply });
export const disconnect = (reply: string): Decision => ({ decision: 'disconnect', reply });
export const rewrite = (value: string): Decision => ({ decision: 'rewrite', value });
export const report = (message: string): Decision => ({ decision: 'report', message });

/**
 * What the daemon knows of the session when a handler runs. Written out, not derived from the
 * internal SessionFacts: modules depend on this shape, which must not move when internals do.
 */
export interface SessionInfo {
  id: string;
  listener: number;
  /** `1.2.3.4`, `::1`, or `local` for the enqueue socket. */
  clientAddress: string;
  clientPort: number;
  localAddress: string;
  localPort: number;
  rdns?: string;
  fcrdns?: 'pass' | 'fail' | 'error';
  helo?: string;
  authUser?: string;
  tls: boolean;
}

export interface PhaseEvent {
  phase: FilterPhase;
  session: SessionInfo;
  /** The command's parameter: HELO name, MAIL FROM / RCPT TO address (no brackets), or ''. */
  param: string;
  /** The transaction's sender once MAIL FROM was accepted. */
  sender?: string;
}

/** smtpd-filters(7) report events (link-connect, tx-mail, ...) with their fields in 0.7 order. */
export interface ReportEvent {
  event: string;
  session: string;
  params: string[];
}

export interface FilterServices {
  /** The filter's name in smtpd.conf. */
  name: string;
  /**
   * The lka's resolver: cached (TTLs honoured), concurrent lookups of one name shared, and each
   * call bounded by a deadline after which it answers `tempfail`.
   */
  dns: {
    a(name: string): Promise<Answer<string>>;
    aaaa(name: string): Promise<Answer<string>>;
    mx(name: string): Promise<Answer<MxRecord>>;
    txt(name: string): Promise<Answer<string>>;
    ptr(address: string): Promise<Answer<string>>;
  };
  /** A table of smtpd.conf by name, as table(5) services see it; undefined when none has that name. */
  table(name: string): { match(service: 'domain' | 'netaddr' | 'mailaddr' | 'string', key: string): Promise<boolean> } | undefined;
  /** Count under `filter.NAME.KEY` with labels, shown by `tsmtpctl show stats` and Prometheus. */
  increment(key: string, labels?: Record<string, string>): void;
  /** One log line, `filter-report filter=NAME` and the fields; never pass secrets. */
  log(session: string | null, fields: Record<string, string | number | boolean>): void;
}

export interface TsFilter {
  phases?: Partial<Record<Exclude<FilterPhase, 'data-line'>, (ev: PhaseEvent) => Decision | Promise<Decision>>>;
  /** Report events by name, or `*` for all; their return value is ignored. */
  reports?: Record<string, (ev: ReportEvent) => void>;
  close?(): void | Promise<void>;
}

/** `options`: the words after the module path in smtpd.conf, as written. */
export type FilterFactory = (options: string[], services: FilterServices) => TsFilter | Promise<TsFilter>;
