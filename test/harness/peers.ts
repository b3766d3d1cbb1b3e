/**
 * Interop tests talk to real peers from Debian packages: swaks, Postfix's smtp-source, Dovecot,
 * OpenSMTPD's filters, Python modules, the openssl tool. `peerSkip(...)` gives a test's `skip`
 * option: false when every peer is here, else the reason and the package to install, so a
 * machine with only Node runs the rest and says what it left out. Under TSMTPD_REQUIRE_PEERS=1
 * (which .ci/run sets, after installing them all) a missing peer is an error instead.
 *
 *   test('swaks over STARTTLS', { skip: peerSkip('swaks') }, async () => { ... });
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter } from 'node:path';

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(program: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).filter(Boolean).some((d) => executable(`${d}/${program}`));
}

function python(module: string): boolean {
  return executable('/usr/bin/python3') && spawnSync('/usr/bin/python3', ['-c', `import ${module}`], { stdio: 'ignore' }).status === 0;
}

function perl(modules: string): boolean {
  return spawnSync('perl', [...modules.split(' ').map((m) => `-M${m}`), '-e1'], { stdio: 'ignore' }).status === 0;
}

/** A service listening on loopback (the databases the table tests use). */
function listening(port: number): boolean {
  return spawnSync('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`], { stdio: 'ignore', timeout: 3000 }).status === 0;
}

/** Private namespaces (unshare -m -n), which need root: the tests build a machine in them. */
function namespaces(): boolean {
  return process.getuid?.() === 0 && spawnSync('unshare', ['-m', '-n', 'true'], { stdio: 'ignore' }).status === 0;
}

const LIBEXEC = '/usr/libexec/opensmtpd';

export const PEERS = {
  swaks: { here: () => onPath('swaks') && perl('Net::SSLeay IO::Socket::SSL'), install: 'swaks libnet-ssleay-perl libio-socket-ssl-perl' },
  'smtp-source': { here: () => ['/usr/sbin/smtp-source', '/usr/bin/smtp-source'].some(executable), install: 'postfix' },
  python3: { here: () => executable('/usr/bin/python3'), install: 'python3' },
  'python3-prometheus-client': { here: () => python('prometheus_client'), install: 'python3-prometheus-client' },
  'python3-dkim': { here: () => python('dkim'), install: 'python3-dkim' },
  'dovecot-lmtpd': { here: () => executable('/usr/lib/dovecot/lmtp') && executable('/usr/sbin/dovecot'), install: 'dovecot-lmtpd' },
  'filter-dkimsign': { here: () => executable(`${LIBEXEC}/filter-dkimsign`), install: 'opensmtpd-filter-dkimsign' },
  'filter-rspamd': { here: () => executable(`${LIBEXEC}/filter-rspamd`), install: 'opensmtpd-filter-rspamd' },
  'filter-senderscore': { here: () => executable(`${LIBEXEC}/filter-senderscore`), install: 'opensmtpd-filter-senderscore' },
  openssl: { here: () => onPath('openssl'), install: 'openssl' },
  logger: { here: () => onPath('logger'), install: 'bsdutils' },
  mkpasswd: { here: () => onPath('mkpasswd'), install: 'whois' },
  'fail2ban-regex': { here: () => onPath('fail2ban-regex') && executable('/usr/bin/python3'), install: 'fail2ban' },
  postgresql: { here: () => listening(5432), install: 'postgresql (listening on 127.0.0.1:5432, database test)' },
  mariadb: { here: () => listening(3306), install: 'mariadb-server (listening on 127.0.0.1:3306, database test)' },
  redis: { here: () => listening(6379), install: 'redis-server (listening on 127.0.0.1:6379)' },
  namespaces: { here: namespaces, install: '(run as root where unshare(1) may create mount and network namespaces)' },
} satisfies Record<string, { here: () => boolean; install: string }>;

export type Peer = keyof typeof PEERS;

const seen = new Map<Peer, boolean>();

export function hasPeer(name: Peer): boolean {
  if (!seen.has(name)) seen.set(name, PEERS[name].here());
  return seen.get(name)!;
}

/** For harness code that cannot skip (certificates made in a `before`): a clear error instead of ENOENT. */
export function requirePeer(name: Peer): void {
  if (!hasPeer(name)) throw new Error(`missing peer: ${name} (Debian package ${PEERS[name].install}; bash .ci/run installs it)`);
}

/** A `skip` option: false, or why the test cannot run here. Throws when peers are required. */
export function peerSkip(...names: Peer[]): string | false {
  const missing = names.filter((n) => !hasPeer(n));
  if (missing.length === 0) return false;
  const reason = `needs ${missing.map((n) => `${n} (${PEERS[n].install})`).join(', ')}; bash .ci/run installs them`;
  if (process.env.TSMTPD_REQUIRE_PEERS === '1') throw new Error(`missing peer: ${reason} (TSMTPD_REQUIRE_PEERS=1)`);
  return reason;
}
