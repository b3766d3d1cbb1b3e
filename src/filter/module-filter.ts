/**
 * An in-process TypeScript/JavaScript filter (`filter NAME module "path.js" [options]`): the
 * module is imported once at start, its factory gets the daemon's services, and every handler
 * call is bounded by a deadline and guarded against throwing. Until the module has loaded, and
 * for ever if it failed to, it has a say in every phase and answers none (the engine fails
 * them closed): a filter that is not there cannot be told from one that has no opinion.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { FilterPhase } from '../config/types.js';
import type { Resolver } from '../dns/resolver.js';
import type { TableSet } from '../table/types.js';
import { log } from '../log.js';
import type { Decision, FilterFactory, FilterServices, PhaseEvent, ReportEvent, TsFilter } from './api.js';

/** Modules shipped with tsmtpd, named without a path: `filter bl module "dnsbl" ...`. */
const BUNDLED = new Set(['dnsbl']);
const DNS_DEADLINE_MS = 10_000;
/** The phases a module may handle; a handler under any other name would never run, so it is refused. */
const PHASES: Record<Exclude<FilterPhase, 'data-line'>, true> = {
  connect: true, helo: true, ehlo: true, starttls: true, auth: true, 'mail-from': true, 'rcpt-to': true,
  data: true, rset: true, quit: true, noop: true, help: true, wiz: true, commit: true,
};

export interface ModuleContext {
  resolver: Resolver;
  tables: () => TableSet;
  increment(key: string, labels: Record<string, string>): void;
  /** How long a handler may take before its command is answered with a temporary error. */
  deadlineMs: number;
}

/** Race a promise against a deadline; the loser is ignored, never left to reject unhandled. */
export function withDeadline<T>(p: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  return new Promise((resolvePromise, rejectPromise) => {
    const timer = setTimeout(() => resolvePromise(onTimeout()), ms);
    p.then(
      (v) => { clearTimeout(timer); resolvePromise(v); },
      (e) => { clearTimeout(timer); rejectPromise(e); },
    );
  });
}

export function modulePath(path: string, configFile: string): string {
  if (BUNDLED.has(path)) return fileURLToPath(new URL(`./modules/${path}.js`, import.meta.url));
  return isAbsolute(path) ? path : resolve(dirname(configFile), path);
}

export class ModuleFilter {
  /** Null until the module has loaded and its factory returned a well-formed filter. */
  private filter: TsFilter | null = null;

  constructor(
    readonly name: string,
    private readonly path: string,
    private readonly options: string[],
    private readonly ctx: ModuleContext,
  ) {}

  async start(): Promise<void> {
    const mod = (await import(pathToFileURL(this.path).href)) as { default?: unknown };
    if (typeof mod.default !== 'function') throw new Error(`${this.path} has no default export factory`);
    const filter: unknown = await (mod.default as FilterFactory)(this.options, this.services());
    this.filter = wellFormed(filter, this.path);
  }

  /** Whether the module handles this phase; before it has loaded, what it handles is unknown, so every phase. */
  handles(phase: string): boolean {
    if (!this.filter) return true;
    return typeof (this.filter.phases as Record<string, unknown> | undefined)?.[phase] === 'function';
  }

  /** Run the phase's handler; a throw or a missed deadline comes back as an Error to fail the command. */
  async run(ev: PhaseEvent): Promise<Decision> {
    if (!this.filter) throw new Error(`filter ${this.name} is not loaded`);
    const handler = (this.filter.phases as Record<string, (e: PhaseEvent) => Decision | Promise<Decision>>)[ev.phase]!;
    const out = await withDeadline<Decision | Error>(
      Promise.resolve().then(() => handler(ev)),
      this.ctx.deadlineMs,
      () => new Error(`no decision within ${this.ctx.deadlineMs} ms`),
    );
    if (out instanceof Error) throw out;
    if (!out || typeof out !== 'object' || typeof (out as { decision?: unknown }).decision !== 'string') throw new Error('handler returned no decision');
    return out;
  }

  report(ev: ReportEvent): void {
    const r = this.filter?.reports;
    const fn = r?.[ev.event] ?? r?.['*'];
    if (!fn) return;
    try {
      fn(ev);
    } catch (err) {
      log('warn', ev.session, 'lka', 'filter-error', { filter: this.name, event: ev.event, error: (err as Error).message });
    }
  }

  async stop(): Promise<void> {
    await Promise.resolve(this.filter?.close?.()).catch(() => undefined);
  }

  private services(): FilterServices {
    const { resolver } = this.ctx;
    const bounded = <T>(p: Promise<T>) => withDeadline(p, DNS_DEADLINE_MS, () => ({ status: 'tempfail', reason: 'deadline' }) as T);
    return {
      name: this.name,
      dns: {
        a: (n) => bounded(resolver.a(n)),
        aaaa: (n) => bounded(resolver.aaaa(n)),
        mx: (n) => bounded(resolver.mx(n)),
        txt: (n) => bounded(resolver.txt(n)),
        ptr: (a) => bounded(resolver.ptr(a)),
      },
      table: (name) => {
        const t = this.ctx.tables().get(name);
        return t && { match: (service, key) => t.match(service, key) };
      },
      increment: (key, labels = {}) => this.ctx.increment(`filter.${this.name}.${key}`, labels),
      log: (session, fields) => log('info', session, 'lka', 'filter-report', { filter: this.name, ...fields }),
    };
  }
}

/** What a factory returned, checked: a typo in a phase name must not silently skip the filter. */
function wellFormed(filter: unknown, what: string): TsFilter {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
  if (!isObject(filter)) throw new Error(`${what}: the factory returned no filter object`);
  const { phases, reports, close } = filter;
  if (phases !== undefined && !isObject(phases)) throw new Error(`${what}: phases is not an object`);
  for (const [name, fn] of Object.entries(phases ?? {})) {
    if (!Object.hasOwn(PHASES, name)) throw new Error(`${what}: unknown phase ${name}`);
    if (typeof fn !== 'function') throw new Error(`${what}: the ${name} handler is not a function`);
  }
  if (reports !== undefined && (!isObject(reports) || Object.values(reports).some((fn) => typeof fn !== 'function'))) {
    throw new Error(`${what}: reports must map event names to functions`);
  }
  if (close !== undefined && typeof close !== 'function') throw new Error(`${what}: close is not a function`);
  return filter as TsFilter;
}
