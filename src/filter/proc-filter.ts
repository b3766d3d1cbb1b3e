/**
 * One filter process speaking smtpd-filters(7) on its stdio: `proc` (shared by every filter that
 * names it) or `proc-exec`. It is started with `/bin/sh -c` as OpenSMTPD does (a command without
 * a leading `/` from OpenSMTPD's filter directory, see libexec.ts), gets the
 * handshake, and registers what it wants before any session uses it. Requests are matched to
 * answers by an opaque token. A filter that dies fails what it owed at once (none hangs) and is
 * started again after a pause, longer after each failed try; until it is back, the engine answers
 * what it registered with a temporary error (`claims`). stderr lines are logged.
 */
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { ProcessSpec } from '../config/types.js';
import { log } from '../log.js';
import { filterLine, handshake, parseOutput, reportLine, type FilterDecisionWord } from './protocol.js';
import type { FilterProcess, FilterSpawner } from './spawn.js';
import { trace } from '../trace.js';

/** OpenSMTPD's own release whose protocol tsmtpd speaks; some filters read it. */
const SMTPD_VERSION = '7.8.0';
const HANDSHAKE_TIMEOUT_MS = 10_000;
const RESTART_DELAY_MS = 1000;
const RESTART_MAX_DELAY_MS = 60_000;
/** A line a filter writes longer than this is a broken filter, not a message line. */
const MAX_LINE = 64 * 1024;

export interface ProcResult {
  decision: FilterDecisionWord;
  param: string;
}

export interface ProcFilterOptions {
  version: string;
  sessionTimeoutSec: number;
  admd?: string;
  /** Starts the process as its user, in its chroot: the parent does it for the daemon's lka. */
  spawn: FilterSpawner;
}

type Pending = { session: string; resolve(r: ProcResult): void; reject(err: Error): void };

export class ProcFilter {
  private child: FilterProcess | null = null;
  /** What the last completed handshake registered; kept while the filter is down or restarting. */
  private registered = new Set<string>();
  /** Whether a handshake ever completed, i.e. whether `registered` is known. */
  private known = false;
  private failedRestarts = 0;
  private readonly pending = new Map<string, Pending>();
  /** data-line output, per token, for the stream that opened it. */
  private readonly datalines = new Map<string, { session: string; onLine(line: string): void; onError(err: Error): void }>();
  private ready = false;
  private stopping = false;

  constructor(
    readonly name: string,
    private readonly spec: ProcessSpec,
    private readonly opts: ProcFilterOptions,
  ) {}

  get version(): string {
    return this.opts.version;
  }

  /** Start the process and wait for `register|ready`; rejects if it never comes. */
  start(): Promise<void> {
    const registering = new Set<string>();
    const child = this.opts.spawn(this.name, this.spec);
    this.child = child;
    child.stdin.on('error', () => undefined);
    if (child.stderr) {
      createInterface({ input: child.stderr, crlfDelay: Infinity }).on('line', (line) => {
        log('info', null, 'lka', 'filter-stderr', { filter: this.name, line: line.slice(0, 1000) });
      });
    }
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => fail(new Error(`filter ${this.name}: no register|ready within ${HANDSHAKE_TIMEOUT_MS / 1000}s`)), HANDSHAKE_TIMEOUT_MS);
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(err);
      };
      child.on('error', (err) => fail(new Error(`filter ${this.name}: ${err.message}`)));
      child.on('exit', (code, signal) => {
        fail(new Error(`filter ${this.name} exited during the handshake (${signal ?? code})`));
        this.died(child, code, signal);
      });
      // bytes as latin1: body lines pass through unchanged whatever their charset
      child.stdout.setEncoding('latin1');
      const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
      lines.on('line', (line) => {
        if (line.length > MAX_LINE) return this.broken(`line over ${MAX_LINE} octets`);
        trace('filters', null, 'lka', { filter: this.name, dir: '<<<', line: line.slice(0, 200) });
        const out = parseOutput(line, this.opts.version);
        if (!this.ready && out.kind === 'register') {
          if (out.subsystem !== 'smtp-in') return fail(new Error(`filter ${this.name} registered for unknown subsystem ${out.subsystem}`));
          registering.add(`${out.stream}|${out.event}`);
        } else if (!this.ready && out.kind === 'register-ready') {
          this.registered = registering;
          this.known = true;
          this.ready = true;
          settled = true;
          clearTimeout(timer);
          log('info', null, 'lka', 'filter-start', { filter: this.name, pid: child.pid, registered: [...this.registered].join(',') });
          resolve();
        } else this.answer(out, line);
      });
      for (const l of handshake({ smtpdVersion: SMTPD_VERSION, version: this.opts.version, sessionTimeoutSec: this.opts.sessionTimeoutSec, ...(this.opts.admd ? { admd: this.opts.admd } : {}) })) {
        child.stdin.write(`${l}\n`);
      }
    });
  }

  get running(): boolean {
    return this.ready;
  }

  /** Whether the running filter asked for this report event or filter phase (`*` asks for all events). */
  wants(stream: 'report' | 'filter', event: string): boolean {
    return this.ready && (this.registered.has(`${stream}|${event}`) || (stream === 'report' && this.registered.has('report|*')));
  }

  /**
   * Whether the filter has a say in this phase, running or not: it registered the phase (or
   * data-line, for the data phase that opens the body stream), or it never finished a handshake,
   * so that what it will register is unknown. A filter not running must be waited for there.
   */
  claims(phase: string): boolean {
    if (!this.known) return true;
    return this.registered.has(`filter|${phase}`) || (phase === 'data' && this.registered.has('filter|data-line'));
  }

  report(session: string, event: string, params: readonly string[], nowMs: number): void {
    if (this.wants('report', event)) this.write(reportLine(this.opts.version, nowMs, session, event, params));
  }

  /** A filter request; settles when the filter answers, or fails when it dies. */
  request(session: string, phase: string, params: readonly string[], nowMs: number): Promise<ProcResult> {
    if (!this.ready) return Promise.reject(new Error(`filter ${this.name} is not running`));
    const token = randomBytes(8).toString('hex');
    return new Promise((resolve, reject) => {
      this.pending.set(token, { session, resolve, reject });
      this.write(filterLine(this.opts.version, nowMs, phase, session, token, params));
    });
  }

  /** Start a data-line stream for one message; output lines go to onLine, the last one is `.`. */
  openData(session: string, onLine: (line: string) => void, onError: (err: Error) => void): string {
    if (!this.ready) throw new Error(`filter ${this.name} is not running`);
    const token = randomBytes(8).toString('hex');
    this.datalines.set(token, { session, onLine, onError });
    return token;
  }

  dataLine(session: string, token: string, line: string, nowMs: number): void {
    this.write(filterLine(this.opts.version, nowMs, 'data-line', session, token, [line]), 'latin1');
  }

  closeData(token: string): void {
    this.datalines.delete(token);
  }

  /** Forget what a session left behind (it closed while the filter still owed an answer). */
  forget(session: string): void {
    for (const [token, p] of this.pending) if (p.session === session) this.pending.delete(token);
    for (const [token, d] of this.datalines) if (d.session === session) this.datalines.delete(token);
  }

  stop(): void {
    this.stopping = true;
    this.child?.kill('SIGTERM');
  }

  private answer(out: ReturnType<typeof parseOutput>, line: string): void {
    switch (out.kind) {
      case 'result': {
        const p = this.pending.get(out.token);
        // an answer for a token we no longer wait on (its session closed) is dropped quietly
        if (!p || p.session !== out.session) return;
        this.pending.delete(out.token);
        // a rewritten address may be UTF-8 (SMTPUTF8)
        return p.resolve({ decision: out.decision, param: Buffer.from(out.param, 'latin1').toString('utf8') });
      }
      case 'dataline': {
        const d = this.datalines.get(out.token);
        if (!d || d.session !== out.session) return;
        if (out.line === '.') this.datalines.delete(out.token);
        return d.onLine(out.line);
      }
      case 'invalid':
        return this.broken(out.reason);
      default:
        return this.broken(`unexpected line after ready: ${line.slice(0, 40)}`);
    }
  }

  /** A protocol violation: OpenSMTPD treats it as fatal for the filter; so do we. */
  private broken(reason: string): void {
    log('warn', null, 'lka', 'filter-error', { filter: this.name, error: reason });
    this.child?.kill('SIGKILL');
  }

  private write(line: string, encoding: BufferEncoding = 'utf8'): void {
    trace('filters', null, 'lka', { filter: this.name, dir: '>>>', line: line.slice(0, 200) });
    if (this.child?.stdin.writable) this.child.stdin.write(`${line}\n`, encoding);
  }

  private died(child: FilterProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    const wasReady = this.ready;
    this.ready = false;
    this.child = null;
    const err = new Error(`filter ${this.name} exited`);
    for (const p of this.pending.values()) p.reject(err);
    for (const d of this.datalines.values()) d.onError(err);
    this.pending.clear();
    this.datalines.clear();
    if (this.stopping) return;
    log('warn', null, 'lka', 'filter-exit', { filter: this.name, code: code ?? undefined, signal: signal ?? undefined });
    // a filter that ran is started again (a failed restart schedules the next); one that never
    // completed its first handshake is left down: its start() rejected, which is its caller's to report
    if (wasReady) this.restartLater();
  }

  private restartLater(): void {
    const delay = Math.min(RESTART_MAX_DELAY_MS, RESTART_DELAY_MS * 2 ** this.failedRestarts);
    setTimeout(() => {
      if (this.stopping) return;
      this.start().then(
        () => { this.failedRestarts = 0; },
        (e: Error) => {
          this.failedRestarts++;
          log('warn', null, 'lka', 'filter-error', { filter: this.name, error: e.message });
          if (!this.stopping) this.restartLater();
        },
      );
    }, delay).unref();
  }
}
