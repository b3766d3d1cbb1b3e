/** The proc backend: a child speaking the smtpd-tables 0.1 line protocol on stdin/stdout. */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { log } from '../log.js';
import type { TableBackend, TableService } from './types.js';
import { TableError } from './types.js';

const SERVICES = new Set(['alias', 'domain', 'credentials', 'netaddr', 'userinfo', 'source', 'mailaddr',
  'addrname', 'mailaddrmap', 'relayhost', 'string', 'regex', 'auth']);
const MAX_LINE = 64 * 1024;

interface Pending { resolve: (fields: string[]) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }

/** One running child; dead once it exits, stalls or breaks the protocol, and replaced on next use. */
class ProcChild {
  readonly services = new Set<string>();
  private readonly pending = new Map<string, Pending>();
  private buf = '';
  private dead = false;
  private ready!: { resolve: () => void; reject: (e: Error) => void };

  constructor(private readonly child: ChildProcess, private readonly timeoutMs: number) {
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => this.onData(d));
    child.on('exit', (code) => this.fail(`table process exited (${code ?? 'signal'})`));
    child.on('error', (e) => this.fail(`table process: ${e.message}`));
    child.stdin!.on('error', () => this.fail('table process closed its input'));
  }

  handshake(name: string): Promise<void> {
    const p = new Promise<void>((resolve, reject) => { this.ready = { resolve, reject }; });
    const timer = setTimeout(() => this.fail('table process handshake timed out'), this.timeoutMs);
    this.write(`config|smtpd-version|7.8.0-portable\nconfig|protocol|0.1\nconfig|tablename|${name}\nconfig|ready\n`);
    return p.finally(() => clearTimeout(timer));
  }

  get alive(): boolean { return !this.dead; }

  request(line: string, id: string): Promise<string[]> {
    if (this.dead) return Promise.reject(new TableError('table process is dead', true));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail('table process stalled'), this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.write(line + '\n');
    });
  }

  kill(): void {
    this.dead = true;
    // The child leads its own group so a shell's grandchildren die with it.
    try {
      if (this.child.pid) process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      this.child.kill('SIGKILL');
    }
  }

  private write(s: string): void {
    if (!this.dead) this.child.stdin!.write(s);
  }

  private onData(d: string): void {
    this.buf += d;
    if (this.buf.length > MAX_LINE && !this.buf.includes('\n')) return this.fail('table process line too long');
    let nl: number;
    while (!this.dead && (nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      this.onLine(line);
    }
  }

  private onLine(line: string): void {
    const f = line.split('|');
    if (f[0] === 'register') {
      if (f[1] === 'ready') {
        return this.services.size > 0 ? this.ready.resolve() : this.fail('table process registered no service');
      }
      if (!SERVICES.has(f[1] ?? '')) return this.fail(`table process registered unknown service ${f[1]}`);
      this.services.add(f[1]!);
      return;
    }
    const p = this.pending.get(f[1] ?? '');
    if (!p || !/^(update|check|lookup|fetch)-result$/.test(f[0]!)) return this.fail('table process sent an invalid line');
    this.pending.delete(f[1]!);
    clearTimeout(p.timer);
    p.resolve(f.slice(2));
  }

  private fail(reason: string): void {
    if (this.dead) return;
    this.kill();
    const err = new TableError(reason, true);
    this.ready?.reject(err);
    for (const p of this.pending.values()) { clearTimeout(p.timer); p.reject(err); }
    this.pending.clear();
  }
}

export interface ProcOptions { timeoutMs?: number }

/**
 * What to run: a `proc:` command line (through `/bin/sh -c`), or an external helper program
 * run as smtpd's fork_proc_backend() runs `table-NAME`: argv[0] the table's name, then the part
 * of the config after `NAME:` if any.
 */
export type ProcProgram = string | { file: string; args: string[]; argv0: string };

export class ProcBackend implements TableBackend {
  readonly services = 'all' as const;
  private child: ProcChild | undefined;
  private starting: Promise<ProcChild> | undefined;

  constructor(private readonly name: string, private readonly program: ProcProgram, private readonly opts: ProcOptions = {}) {}

  async open(): Promise<void> { await this.get(); }

  /** Start a child when none runs (first use, or after a death): never more than one at a time. */
  private get(): Promise<ProcChild> {
    if (this.child?.alive) return Promise.resolve(this.child);
    this.starting ??= this.start().finally(() => { this.starting = undefined; });
    return this.starting;
  }

  private async start(): Promise<ProcChild> {
    const p = this.program;
    const [file, args, argv0] = typeof p === 'string' ? ['/bin/sh', ['-c', p], undefined] : [p.file, p.args, p.argv0];
    const cp = spawn(file, args, { stdio: ['pipe', 'pipe', 'inherit'], detached: true, ...(argv0 ? { argv0 } : {}) });
    const child = new ProcChild(cp, this.opts.timeoutMs ?? 5000);
    await child.handshake(this.name);
    log('debug', null, 'lka', 'table-update', { table: this.name, event: 'proc-started' });
    this.child = child;
    return child;
  }

  private async ask(verb: string, service: TableService | undefined, key?: string): Promise<string[]> {
    if (key !== undefined && /[\r\n]/.test(key)) throw new TableError('key contains CR or LF');
    const child = await this.get();
    const id = randomBytes(4).toString('hex');
    const parts = ['table', '0.1', String(Date.now() / 1000), this.name, verb];
    if (service) parts.push(service);
    parts.push(id);
    if (key !== undefined) parts.push(key);
    const answer = await child.request(parts.join('|'), id);
    if (answer[0] === 'error') throw new TableError(`table ${this.name}: ${answer.slice(1).join('|') || 'error'}`, true);
    return answer;
  }

  async update(): Promise<void> { await this.ask('update', undefined); }

  async offers(service: TableService): Promise<boolean> {
    return (await this.get()).services.has(service);
  }

  async check(service: TableService, key: string): Promise<boolean> {
    return (await this.ask('check', service, key))[0] === 'found';
  }

  async lookup(service: TableService, key: string): Promise<string | undefined> {
    const a = await this.ask('lookup', service, key);
    return a[0] === 'found' ? a.slice(1).join('|') : undefined;
  }

  async fetch(service: TableService): Promise<string | undefined> {
    const a = await this.ask('fetch', service);
    return a[0] === 'found' ? a.slice(1).join('|') : undefined;
  }

  async entries(service: TableService): Promise<string[]> {
    throw new TableError(`proc tables cannot list ${service} entries`);
  }

  async close(): Promise<void> { this.child?.kill(); this.child = undefined; }
}
