/**
 * What the daemon will need from the machine, checked before it starts and by `tsmtpd -n`: the
 * addresses of every `listen on` (resolved once, and kept on the listener for the sockets), the
 * pki certificates and keys (each pair must match), the ca files, every table a native backend
 * reads, each external `table-NAME` helper, and each filter program. Every failure is a
 * ConfigError at the line of the directive that asked for it.
 *
 * smtpd checks part of this in `smtpd -n` (interfaces and names, pki and ca files, file and db
 * tables, the queue key) and finds the rest when it fails to start; tsmtpd checks it all up front.
 */
import { readFileSync, statSync } from 'node:fs';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { delimiter, join } from 'node:path';
import { createResolver } from '../dns/index.js';
import type { Config, FilterDecl, PkiDecl, TableDecl, Where } from '../config/types.js';
import { ConfigError } from '../errors.js';
import { filterCommandLine, isExecutableFile, libexecDirs } from '../libexec.js';
import { modulePath } from '../filter/module-filter.js';
import { parseTableText } from '../table/file-format.js';
import { createTableBackend, externalHelper, isNativeBackend } from '../table/registry.js';
import { shapeError, tableUses } from '../config/validate.js';
import { type HostView, listenAddresses, ListenAddressError } from './listen-addresses.js';

function fail(where: Where, message: string): never {
  throw new ConfigError(where.file, where.line, message);
}

/** The machine as it is: interfaces, /etc/hosts then the config's resolvers, the sysctls. */
export function realHost(config: Pick<Config, 'resolvers'>): HostView & { close(): void } {
  const resolver = createResolver(config);
  const sysctl = (path: string) => {
    try {
      return readFileSync(path, 'utf8').trim() === '1';
    } catch {
      return false;
    }
  };
  return {
    interfaces: networkInterfaces(),
    async resolve(name, family) {
      const a = await (family === 4 ? resolver.a(name) : resolver.aaaa(name));
      return a.status === 'ok' ? a.records : [];
    },
    nonlocalBind: { v4: sysctl('/proc/sys/net/ipv4/ip_nonlocal_bind'), v6: sysctl('/proc/sys/net/ipv6/ip_nonlocal_bind') },
    close: () => resolver.close(),
  };
}

async function checkListeners(config: Config, host: HostView): Promise<void> {
  for (const l of config.listeners) {
    if (l.kind !== 'inet') continue;
    try {
      l.addresses = await listenAddresses(l, host);
    } catch (err) {
      if (err instanceof ListenAddressError) fail(l.where, err.message);
      throw err;
    }
  }
  const stat = config.statListen;
  if (stat) await listenAddresses({ interface: stat.address, family: 'any' }, host).catch((err: Error) => fail(stat.where, `stat ${err.message}`));
}

/**
 * A certificate or key file as smtpd's ssl_load_file() takes it: readable, and not writable by
 * others (at most 0755 for certificates, 0740 for keys). smtpd also wants root to own it; tsmtpd
 * may run as an ordinary user, so the owner is not checked.
 */
function readSecure(path: string, most: number, where: Where, what: string): Buffer {
  let mode: number;
  let bytes: Buffer;
  try {
    mode = statSync(path).mode & 0o777;
    bytes = readFileSync(path);
  } catch (err) {
    return fail(where, `${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if ((mode & ~most) !== 0) fail(where, `${what} ${path}: insecure permissions ${mode.toString(8).padStart(4, '0')}: must be at most ${most.toString(8).padStart(4, '0')}`);
  return bytes;
}

function checkPki(p: PkiDecl): void {
  const what = `pki ${p.name}`;
  const certBytes = readSecure(p.cert!, 0o755, p.where, `${what}: certificate`);
  const keyBytes = readSecure(p.key!, 0o740, p.where, `${what}: key`);
  let cert: X509Certificate;
  let key: KeyObject;
  try {
    cert = new X509Certificate(certBytes);
  } catch {
    return fail(p.where, `${what}: ${p.cert} holds no PEM certificate`);
  }
  try {
    key = createPrivateKey(keyBytes);
  } catch (err) {
    const encrypted = (err as NodeJS.ErrnoException).code === 'ERR_MISSING_PASSPHRASE';
    return fail(p.where, `${what}: ${p.key} ${encrypted ? 'is encrypted (tsmtpd reads no passphrase)' : 'holds no PEM private key'}`);
  }
  if (!cert.checkPrivateKey(key)) fail(p.where, `${what}: the key ${p.key} does not match the certificate ${p.cert}`);
}

function checkCa(config: Config): void {
  for (const ca of config.cas.values()) {
    const bytes = readSecure(ca.cert, 0o755, ca.where, `ca ${ca.name}: certificate`);
    try {
      new X509Certificate(bytes);
    } catch {
      fail(ca.where, `ca ${ca.name}: ${ca.cert} holds no PEM certificate`);
    }
  }
}

/** Open what start will open: file, db, passwd and sqlite tables; the helper of an external one. */
async function checkTable(decl: TableDecl, libexec: string[]): Promise<void> {
  if (!isNativeBackend(decl.backend)) {
    const helper = externalHelper(decl.backend, libexec);
    if ('error' in helper) fail(decl.where, `table ${decl.name}: ${helper.error}`);
    return;
  }
  // a proc table's program runs at start; smtpd -n does not run it either
  if (decl.backend === 'proc' || decl.backend === 'getpwnam' || decl.inline) return;
  const backend = createTableBackend(decl);
  try {
    await backend.open();
  } catch (err) {
    fail(decl.where, `table ${decl.name}: ${(err as Error).message}`);
  } finally {
    await backend.close().catch(() => undefined);
  }
}

function inPath(program: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).filter(Boolean).some((d) => isExecutableFile(`${d}/${program}`));
}

/**
 * The program a filter runs must exist: absolute, in the libexec directory, or in PATH; in its
 * chroot when it has one (there the command is run as written, by the chroot's own shell).
 */
function checkFilterProgram(name: string, spec: { command: string; chroot?: string }, where: Where, libexec: string[]): void {
  const words = (spec.chroot ? spec.command : filterCommandLine(spec.command, libexec, isExecutableFile)).trim().split(/\s+/);
  const program = words[0] === 'exec' ? words[1] ?? '' : words[0]!;
  if (program.startsWith('/')) {
    const path = spec.chroot ? join(spec.chroot, program) : program;
    if (!isExecutableFile(path)) fail(where, `filter ${name}: ${path}: no such executable file`);
    return;
  }
  if (spec.chroot) return;
  // anything but a plain program name (`FOO=1 cmd`, `$HOME/x`, `./x`) is the shell's business
  if (!/^[A-Za-z0-9_+-][A-Za-z0-9._+-]*$/.test(program)) return;
  if (!inPath(program)) fail(where, `filter ${name}: ${program}: not found in ${libexec.join(', ')} nor in PATH`);
}

function checkFilter(f: FilterDecl, config: Config, libexec: string[]): void {
  if (f.kind === 'proc-exec') checkFilterProgram(f.name, f.process, f.where, libexec);
  else if (f.kind === 'module') {
    const path = modulePath(f.path, f.where.file);
    try {
      statSync(path);
    } catch (err) {
      fail(f.where, `filter ${f.name}: module ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  } else if (f.kind === 'proc') {
    const proc = config.procs.get(f.proc);
    if (proc) checkFilterProgram(proc.name, proc, proc.where, libexec);
  }
}

/** A file table's shape is known once it is read: each use must take it (table_check_use()). */
function checkFileTableShapes(config: Config): void {
  const shapes = new Map<string, 'list' | 'map'>();
  for (const use of tableUses(config)) {
    const decl = config.tables.get(use.table);
    if (decl?.backend !== 'file' || decl.inline) continue;
    if (!shapes.has(decl.name)) shapes.set(decl.name, parseTableText(readFileSync(decl.config, 'utf8'), decl.config).kind);
    const error = shapeError(use, shapes.get(decl.name)!);
    if (error) fail(use.where, error);
  }
}

export interface PreflightOptions {
  host?: HostView;
  libexec?: string[];
}

/** Check everything; the listeners get their `addresses`. Throws ConfigError on the first failure. */
export async function preflight(config: Config, opts: PreflightOptions = {}): Promise<void> {
  const libexec = opts.libexec ?? libexecDirs();
  const own = opts.host ? undefined : realHost(config);
  try {
    await checkListeners(config, opts.host ?? own!);
    for (const p of config.pkis.values()) checkPki(p);
    checkCa(config);
    for (const t of config.tables.values()) await checkTable(t, libexec);
    checkFileTableShapes(config);
    for (const f of config.filters.values()) checkFilter(f, config, libexec);
  } finally {
    own?.close();
  }
}
