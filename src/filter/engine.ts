/**
 * The filters of every listener, run by the lka: builtin rules, smtpd-filters(7) processes and
 * TypeScript modules, chained in smtpd.conf's order. For one phase the chain runs in order:
 * `proceed` passes to the next filter; any other result answers the session and ends the chain,
 * as lka_filter.c sends every other filter-result straight to the session: `junk` marks the
 * transaction, `rewrite` changes the command's parameter, `report` is reported, `reject` /
 * `disconnect` refuse, a builtin `bypass` accepts. A builtin `report` alone goes on to the next
 * filter (filter_protocol_internal() reports it and carries on). Message bodies flow through the
 * processes that registered `data-line`, one after the other.
 */
import type { SessionFacts, WireReply } from '../bus/messages.js';
import type { Config, FilterDecl, FilterPhase } from '../config/types.js';
import type { Resolver } from '../dns/resolver.js';
import type { TableSet } from '../table/types.js';
import { log } from '../log.js';
import type { Decision } from './api.js';
import { listenerFilters, builtinDecision, replyOf } from './builtin.js';
import { ModuleFilter, modulePath, withDeadline } from './module-filter.js';
import { ProcFilter } from './proc-filter.js';
import { localSpawner, type FilterSpawner } from './spawn.js';
import { DEFAULT_VERSION } from './protocol.js';

export type PhaseVerdict =
  | { kind: 'proceed'; junk: boolean; param: string; dataLine: boolean }
  | { kind: 'reject' | 'disconnect'; reply: WireReply };

export interface PhaseRequest {
  facts: SessionFacts;
  phase: FilterPhase;
  param: string;
  sender?: string;
}

/** A builtin `bypass` accepts at once, skipping the rest of the chain. */
type StageDecision = Decision | { decision: 'bypass' };

type Stage =
  | { kind: 'builtin'; decl: Extract<FilterDecl, { kind: 'builtin' }> }
  | { kind: 'proc'; name: string; proc: ProcFilter }
  | { kind: 'module'; name: string; module: ModuleFilter };

export interface EngineDeps {
  config: Config;
  tables: () => TableSet;
  resolver: Resolver;
  now: () => number;
  increment(key: string, labels: Record<string, string>): void;
  /** How filter processes start: through the parent in the daemon (it alone may switch users). */
  spawn?: FilterSpawner;
}

/** Phases inside a mail transaction, where RFC 5321 allows 451 and the session can go on. */
const TRANSACTION_PHASES = new Set<FilterPhase>(['mail-from', 'rcpt-to', 'data', 'commit']);

/**
 * A filter that failed, or is not running (dead, restarting, not started, not loaded), where it
 * has a say: the command gets a temporary error, never a pass. Inside a transaction that is 451
 * and the session goes on; elsewhere (connect, HELO/EHLO, STARTTLS, AUTH, RSET, NOOP...) RFC
 * 5321 allows no 4xx but 421, which ends the session. OpenSMTPD cannot meet this case: it
 * serves no session before every filter has registered (lka.c proc_timeout) and exits when
 * one dies (smtpd.c parent_sig_handler, "lost processor").
 */
export function unavailable(phase: FilterPhase): PhaseVerdict {
  const text = 'Temporary filter failure';
  return TRANSACTION_PHASES.has(phase)
    ? { kind: 'reject', reply: { code: 451, enhanced: '4.3.0', text } }
    : { kind: 'disconnect', reply: { code: 421, enhanced: '4.3.0', text } };
}

export class FilterEngine {
  private readonly chains = new Map<number, Stage[]>();
  private readonly procs = new Map<string, ProcFilter>();
  private readonly modules = new Map<string, ModuleFilter>();
  private readonly streams = new Map<string, DataStream>();

  /** Every listener's chain is built at once, so a session asking before start() meets filters that are not running yet. */
  constructor(private readonly deps: EngineDeps) {
    deps.config.listeners.forEach((l, i) => {
      const stages = listenerFilters(deps.config, l.filter).map((decl) => this.stage(decl));
      if (stages.length) this.chains.set(i, stages);
    });
  }

  /** Start every process and module; rejects (with the filter's name) when one cannot start. */
  async start(): Promise<void> {
    await Promise.all([
      ...[...this.procs.values()].map((p) => p.start()),
      ...[...this.modules.values()].map((m) => m.start().catch((e: Error) => { throw new Error(`filter ${m.name}: ${e.message}`); })),
    ]);
  }

  /** One filter of a chain; a process or module named by several chains is shared. Throws with file:line. */
  private stage(decl: FilterDecl): Stage {
    const { config } = this.deps;
    const at = `${decl.where.file}:${decl.where.line}`;
    const spawn = this.deps.spawn ?? localSpawner;
    const procOptions = (version = DEFAULT_VERSION) => ({ version, sessionTimeoutSec: config.smtp.timeout, spawn, ...(config.admd ? { admd: config.admd } : {}) });
    switch (decl.kind) {
      case 'builtin':
        return { kind: 'builtin', decl };
      case 'proc': {
        const spec = config.procs.get(decl.proc);
        if (!spec) throw new Error(`${at}: filter ${decl.name}: no proc named ${decl.proc}`);
        const proc = this.procs.get(`proc:${spec.name}`) ?? new ProcFilter(spec.name, spec, procOptions());
        this.procs.set(`proc:${spec.name}`, proc);
        return { kind: 'proc', name: decl.name, proc };
      }
      case 'proc-exec': {
        const proc = this.procs.get(`exec:${decl.name}`) ?? new ProcFilter(decl.name, decl.process, procOptions(decl.protocol));
        this.procs.set(`exec:${decl.name}`, proc);
        return { kind: 'proc', name: decl.name, proc };
      }
      case 'module': {
        const module = this.modules.get(decl.name) ?? new ModuleFilter(decl.name, modulePath(decl.path, decl.where.file), decl.options, {
          resolver: this.deps.resolver, tables: this.deps.tables, increment: this.deps.increment, deadlineMs: moduleDeadline(config.smtp.timeout),
        });
        this.modules.set(decl.name, module);
        return { kind: 'module', name: decl.name, module };
      }
      case 'chain':
        throw new Error(`${at}: chains are flattened before this point`);
    }
  }

  async stop(): Promise<void> {
    for (const p of this.procs.values()) p.stop();
    await Promise.all([...this.modules.values()].map((m) => m.stop()));
  }

  async phase(req: PhaseRequest): Promise<PhaseVerdict> {
    const stages = this.chains.get(req.facts.listener) ?? [];
    let param = req.param;
    let junk = false;
    for (const stage of stages) {
      const name = stage.kind === 'builtin' ? stage.decl.name : stage.name;
      let d: StageDecision | null;
      try {
        d = await this.decide(stage, { ...req, param });
      } catch (err) {
        log('warn', req.facts.sessionId, 'lka', 'filter-error', { filter: name, phase: req.phase, error: (err as Error).message });
        this.deps.increment('filter.failure', { filter: name, phase: req.phase });
        return unavailable(req.phase);
      }
      if (!d || d.decision === 'proceed') continue;
      if (d.decision === 'bypass') break;
      this.responded(req, name, stage.kind, d);
      switch (d.decision) {
        case 'junk':
          junk = true;
          break;
        case 'rewrite':
          param = d.value;
          break;
        case 'report':
          if (stage.kind === 'builtin') continue;
          break;
        case 'reject': {
          const reply = replyOf(d.reply);
          // smtpd-filters(7): a 421 rejection also ends the session
          return { kind: reply.code === 421 ? 'disconnect' : 'reject', reply };
        }
        case 'disconnect':
          return { kind: 'disconnect', reply: replyOf(d.reply) };
      }
      break;
    }
    const dataLine = req.phase === 'data' && stages.some((s) => s.kind === 'proc' && s.proc.wants('filter', 'data-line'));
    return { kind: 'proceed', junk, param, dataLine };
  }

  /** A report event of a session, sent once to each process or module of its chain that wants it. */
  report(facts: SessionFacts, event: string, params: string[]): void {
    const seen = new Set<ProcFilter | ModuleFilter>();
    for (const stage of this.chains.get(facts.listener) ?? []) {
      if (stage.kind === 'proc' && !seen.has(stage.proc)) {
        seen.add(stage.proc);
        stage.proc.report(facts.sessionId, event, params, this.deps.now());
      } else if (stage.kind === 'module' && !seen.has(stage.module)) {
        seen.add(stage.module);
        stage.module.report({ event, session: facts.sessionId, params });
      }
    }
    if (event === 'link-disconnect') this.forget(facts);
  }

  /**
   * Body lines (dot-escaped, without CRLF) through the data-line processes. Returns the output
   * lines ready so far; with `end`, waits for the last filter's closing `.` and returns the rest.
   */
  async data(facts: SessionFacts, lines: string[], end: boolean): Promise<string[]> {
    let stream = this.streams.get(facts.sessionId);
    if (!stream) {
      const procs = (this.chains.get(facts.listener) ?? []).flatMap((s) => (s.kind === 'proc' && s.proc.claims('data-line') ? [s.proc] : []));
      // one that died since the data phase would let the body pass unfiltered (unsigned, unscanned)
      const down = procs.find((p) => !p.running);
      if (down) throw new Error(`filter ${down.name} is not running`);
      stream = new DataStream(facts.sessionId, procs, this.deps.now, this.deps.config.smtp.maxMessageSize * 2);
      this.streams.set(facts.sessionId, stream);
    }
    // the stream ends with the message, or with the first failure
    let over = end;
    try {
      stream.push(lines);
      if (!end) return stream.take();
      stream.push(['.']);
      const out = await withDeadline<string[] | Error>(stream.finished(), this.deps.config.smtp.timeout * 1000, () => new Error('data-line filter did not finish the message'));
      if (out instanceof Error) throw out;
      return out;
    } catch (err) {
      over = true;
      throw err;
    } finally {
      if (over) this.dropStream(facts.sessionId);
    }
  }

  private dropStream(session: string): void {
    this.streams.get(session)?.close();
    this.streams.delete(session);
  }

  private forget(facts: SessionFacts): void {
    this.dropStream(facts.sessionId);
    for (const p of this.procs.values()) p.forget(facts.sessionId);
  }

  private async decide(stage: Stage, req: PhaseRequest): Promise<StageDecision | null> {
    switch (stage.kind) {
      case 'builtin':
        return builtinDecision(stage.decl, this.deps.tables(), req);
      case 'module':
        if (!stage.module.handles(req.phase)) return null;
        return stage.module.run({ phase: req.phase, session: sessionInfo(req.facts), param: req.param, ...(req.sender !== undefined ? { sender: req.sender } : {}) });
      case 'proc': {
        // a filter that is down where it has a say fails the phase: skipping it would open the gate
        if (!stage.proc.running && stage.proc.claims(req.phase)) throw new Error(`filter ${stage.proc.name} is not running`);
        if (!stage.proc.wants('filter', req.phase)) return null;
        const r = await stage.proc.request(req.facts.sessionId, req.phase, phaseParams(req), this.deps.now());
        switch (r.decision) {
          case 'proceed': case 'junk': return { decision: r.decision };
          case 'reject': case 'disconnect': return { decision: r.decision, reply: r.param };
          case 'rewrite': return { decision: 'rewrite', value: r.param };
          case 'report': return { decision: 'report', message: r.param };
        }
      }
    }
  }

  /** Every decision but proceed is logged, counted and reported to the chain as filter-response. */
  private responded(req: PhaseRequest, name: string, kind: Stage['kind'], d: Decision): void {
    const param = d.decision === 'reject' || d.decision === 'disconnect' ? d.reply : d.decision === 'rewrite' ? d.value : d.decision === 'report' ? d.message : '';
    log('info', req.facts.sessionId, 'lka', d.decision === 'report' ? 'filter-report' : 'filter-response', {
      filter: name, phase: req.phase, response: d.decision, ...(param ? { param } : {}),
    });
    this.deps.increment('filter.decision', { filter: name, phase: req.phase, decision: d.decision });
    // a builtin's report is its own event (lka_report_filter_report); a process's report result
    // comes back from the session as filter-response|PHASE|report|TEXT (smtp_report_filter_response)
    if (d.decision === 'report' && kind === 'builtin') this.report(req.facts, 'filter-report', ['builtin', name, param]);
    else this.report(req.facts, 'filter-response', param ? [req.phase, d.decision, param] : [req.phase, d.decision]);
  }
}

/** A module answers well within the session's idle timeout, so the client gets a reply, not a timeout; 30 s at most. */
function moduleDeadline(sessionTimeoutSec: number): number {
  return Math.min(30_000, (sessionTimeoutSec * 1000) / 2);
}

/** The parameters smtpd-filters(7) gives each phase. */
function phaseParams(req: PhaseRequest): string[] {
  const f = req.facts;
  switch (req.phase) {
    case 'connect':
      return [f.rdns ?? '', f.socket ? 'local' : f.clientAddress.includes(':') ? `[${f.clientAddress}]` : f.clientAddress];
    case 'helo': case 'ehlo': case 'starttls': case 'auth': case 'mail-from': case 'rcpt-to':
      return [req.param];
    default:
      return [];
  }
}

function sessionInfo(f: SessionFacts) {
  return {
    id: f.sessionId, listener: f.listener, clientAddress: f.clientAddress, clientPort: f.clientPort,
    localAddress: f.localAddress, localPort: f.localPort, tls: f.tls,
    ...(f.rdns ? { rdns: f.rdns } : {}), ...(f.fcrdns ? { fcrdns: f.fcrdns } : {}),
    ...(f.helo ? { helo: f.helo } : {}), ...(f.authUser ? { authUser: f.authUser } : {}),
  };
}

/** One message's body on its way through the data-line processes, in chain order. */
class DataStream {
  private readonly tokens: string[];
  private readonly output: string[] = [];
  private outputBytes = 0;
  private done = false;
  private failure: Error | null = null;
  private waiter: (() => void) | null = null;

  constructor(
    private readonly session: string,
    private readonly procs: ProcFilter[],
    private readonly now: () => number,
    private readonly maxOutput: number,
  ) {
    this.tokens = procs.map((p, i) =>
      p.openData(session, (line) => this.emit(i + 1, line), (err) => this.fail(err)),
    );
  }

  push(lines: string[]): void {
    if (this.failure) throw this.failure;
    for (const line of lines) this.emit(0, line);
  }

  /** Output lines ready so far, taken. */
  take(): string[] {
    if (this.failure) throw this.failure;
    const out = this.output.splice(0);
    this.outputBytes = 0;
    return out;
  }

  finished(): Promise<string[]> {
    return new Promise((resolve, reject) => {
      const check = () => (this.failure ? reject(this.failure) : this.done ? resolve(this.take()) : (this.waiter = check));
      check();
    });
  }

  close(): void {
    this.procs.forEach((p, i) => p.closeData(this.tokens[i]!));
  }

  /** A line entering stage `i` (0 = the session's input; procs.length = the final output). */
  private emit(i: number, line: string): void {
    if (i < this.procs.length) return this.procs[i]!.dataLine(this.session, this.tokens[i]!, line, this.now());
    if (line === '.') {
      this.done = true;
    } else {
      this.output.push(line);
      this.outputBytes += line.length + 2;
      if (this.outputBytes > this.maxOutput) this.failure = new Error('data-line filter output too large');
    }
    this.wake();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
}
