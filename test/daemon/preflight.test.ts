/**
 * What `tsmtpd -n` checks besides the grammar, as smtpd -n checks it (load_pki_tree(),
 * load_pki_keys(), table_config() of file and db tables, create_if_listener()) and more: each
 * file start will open, each address it will bind, each program it will run, reported at the
 * line of the directive that names it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, copyFile, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/config/load.js';
import type { Listener } from '../../src/config/types.js';
import { interfaceAddresses, listenAddresses, type HostView } from '../../src/daemon/listen-addresses.js';
import { preflight } from '../../src/daemon/preflight.js';
import { ConfigError } from '../../src/errors.js';
import { makeTestPki } from '../harness/certs.js';
import { peerSkip } from '../harness/peers.js';

const BDB = join(dirname(fileURLToPath(import.meta.url)), '../../../test/table/fixtures/bdb');
const TAIL = 'action "a" relay\nmatch for any action "a"\n';

/** A machine with lo and eth0 (one v4, one global v6, one link-local address) and one DNS name. */
const HOST: HostView = {
  interfaces: {
    lo: [{ address: '127.0.0.1', family: 'IPv4' }, { address: '::1', family: 'IPv6' }] as never,
    eth0: [{ address: '192.0.2.10', family: 'IPv4' }, { address: '2001:db8::10', family: 'IPv6' }, { address: 'fe80::1:2', family: 'IPv6' }] as never,
  },
  async resolve(name, family) {
    const zone: Record<string, [string[], string[]]> = { 'mx.example.test': [['192.0.2.10'], ['2001:db8::10']], 'far.example.test': [['198.51.100.1'], []] };
    return zone[name]?.[family === 4 ? 0 : 1] ?? [];
  },
  nonlocalBind: { v4: false, v6: false },
};

const listener = (text: string, family: Listener['family'] = 'any') => ({ interface: text, family });

async function verdict(text: string, opts: { host?: HostView; libexec?: string[] } = {}): Promise<{ line: number; detail: string } | 'ok'> {
  const config = parseConfig(text, { file: 'smtpd.conf' });
  try {
    await preflight(config, { host: opts.host ?? HOST, libexec: opts.libexec ?? ['/nonexistent'] });
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return { line: err.line, detail: err.detail };
  }
}

async function refused(text: string, line: number, pattern: RegExp, opts: { host?: HostView; libexec?: string[] } = {}): Promise<void> {
  const v = await verdict(text, opts);
  assert.notEqual(v, 'ok', `accepted:\n${text}`);
  if (v === 'ok') return;
  assert.match(v.detail, pattern);
  assert.equal(v.line, line, v.detail);
}

test('listen on an interface binds its addresses, link-local ones with their scope (interface())', async () => {
  assert.deepEqual(interfaceAddresses('eth0', HOST.interfaces), ['192.0.2.10', '2001:db8::10', 'fe80::1:2%eth0']);
  assert.deepEqual(await listenAddresses(listener('eth0'), HOST), ['192.0.2.10', '2001:db8::10', 'fe80::1:2%eth0']);
  assert.deepEqual(await listenAddresses(listener('eth0', 'inet6'), HOST), ['2001:db8::10', 'fe80::1:2%eth0']);
  assert.deepEqual(await listenAddresses(listener('lo', 'inet4'), HOST), ['127.0.0.1']);
});

test('listen on a host name binds what it resolves to (host_dns()); all of 127/8 and ::1 are always here', async () => {
  assert.deepEqual(await listenAddresses(listener('mx.example.test'), HOST), ['192.0.2.10', '2001:db8::10']);
  assert.deepEqual(await listenAddresses(listener('mx.example.test', 'inet4'), HOST), ['192.0.2.10']);
  assert.deepEqual(await listenAddresses(listener('127.0.0.2'), HOST), ['127.0.0.2']);
  assert.deepEqual(await listenAddresses(listener('[::1]'), HOST), ['::1']);
  assert.deepEqual(await listenAddresses(listener('all'), HOST), ['0.0.0.0', '::']);
  assert.deepEqual(await listenAddresses(listener('localhost', 'inet4'), HOST), ['127.0.0.1']);
});

test('an address this machine does not have, or no interface, address or name at all: refused at its line', async () => {
  await refused('\nlisten on 192.0.2.99\n' + TAIL, 2, /listen on 192\.0\.2\.99: this machine has no such address/);
  await refused('listen on eth7\n' + TAIL, 1, /invalid virtual ip or interface: eth7/);
  await refused('listen on far.example.test\n' + TAIL, 1, /198\.51\.100\.1 is no address of this machine/);
  await refused('listen on 2001:db8::10 inet4\n' + TAIL, 1, /invalid virtual ip or interface/);
  await refused('stat listen on 192.0.2.98\n' + TAIL, 1, /stat listen on 192\.0\.2\.98/);
  // net.ipv4.ip_nonlocal_bind=1 lets any address be bound
  assert.equal(await verdict('listen on 192.0.2.99\n' + TAIL, { host: { ...HOST, nonlocalBind: { v4: true, v6: false } } }), 'ok');
});

test('pki: certificate and key are read and must match; a key others can read is refused (ssl_load_file())', { skip: peerSkip('openssl') }, async () => {
  const pki = await makeTestPki();
  const a = await pki.issue('mx.example.test');
  const b = await pki.issue('other.example.test');
  const conf = (cert: string, key: string) => `pki mx.example.test cert "${cert}"\npki mx.example.test key "${key}"\nlisten on lo tls pki mx.example.test\n` + TAIL;
  assert.equal(await verdict(conf(a.cert, a.key)), 'ok');
  await refused(conf(a.cert, b.key), 1, /the key .* does not match the certificate/);
  await refused(conf(join(pki.dir, 'nosuch.crt'), a.key), 1, /certificate .*nosuch\.crt: ENOENT/);
  await refused(conf(a.key, a.key), 1, /holds no PEM certificate/);
  const certAsKey = join(pki.dir, 'cert-as-key');
  await copyFile(a.cert, certAsKey);
  await chmod(certAsKey, 0o600);
  await refused(conf(a.cert, certAsKey), 1, /holds no PEM private key/);
  await chmod(a.key, 0o644);
  await refused(conf(a.cert, a.key), 1, /insecure permissions 0644: must be at most 0740/);
  await refused(`ca mx.example.test cert "${a.key}"\n` + TAIL, 1, /ca mx\.example\.test: .* holds no PEM certificate/);
});

test('tables start will read: file, db (Berkeley DB or SQLite), passwd; external helpers must exist', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-preflight-'));
  await writeFile(join(dir, 'aliases'), 'root: alice\nbroken\n');
  await copyFile(join(BDB, 'aliases.db'), join(dir, 'aliases.db'));
  await writeFile(join(dir, 'passwd'), 'alice:x:1000:1000::/home/alice:/bin/sh\n');
  assert.equal(await verdict(`table a db:${dir}/aliases.db\ntable p passwd:${dir}/passwd\n` + TAIL), 'ok');
  await refused(`\ntable a file:${dir}/nosuch\n` + TAIL, 2, /table a: .*ENOENT/);
  await refused(`table a file:${dir}/aliases\n` + TAIL, 1, /table a: .*aliases:2: mapping table entry without a value/);
  await refused(`table a db:${dir}/aliases\n` + TAIL, 1, /table a: .*neither a Berkeley DB hash file nor a tsmtpd makemap file/);
  await refused(`table p passwd:${dir}/aliases\n` + TAIL, 1, /table p: .*aliases:1: invalid entry/);
  // file tables take their shape once read (table_static_priv_load()), then table_check_use()
  await writeFile(join(dir, 'list'), 'example.org\nexample.net\n');
  await refused(`table l file:${dir}/list\n\naction "v" mbox virtual <l>\n` + TAIL, 3, /table "l" may not be used for virtual lookups/);
  assert.equal(await verdict(`table l file:${dir}/list\naction "b" relay\nmatch for domain <l> action "b"\n`), 'ok');
  await refused('table t ldap:/etc/mail/ldap.conf\n' + TAIL, 1, /table t: backend "ldap" does not exist: no table-ldap in \/nonexistent/);
  // database tables are built in: their config file is read (the server need not answer)
  await refused('table t postgres:/nonexistent/pg.conf\n' + TAIL, 1, /table t: table-postgres: \/nonexistent\/pg.conf: ENOENT/);
});

test('filter programs: a command without a path must be in the filter directory or PATH', async () => {
  await refused('filter "r" proc-exec "filter-nosuch -x"\n' + TAIL, 1, /filter r: filter-nosuch: not found in \/nonexistent nor in PATH/);
  await refused('filter "r" proc-exec "/nonexistent/filter"\n' + TAIL, 1, /\/nonexistent\/filter: no such executable file/);
  await refused('filter "m" module "./nosuch.js"\n' + TAIL, 1, /module .*nosuch\.js: ENOENT/);
  assert.equal(await verdict(`filter "n" proc-exec "${process.execPath} -e 1"\nfilter "s" proc-exec "sh -c true"\nfilter "d" module "dnsbl" "zone=zen.example"\n` + TAIL), 'ok');
});
