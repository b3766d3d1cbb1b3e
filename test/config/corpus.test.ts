/**
 * Issue 16's acceptance: configurations in the styles people publish (inline tables, virtual
 * domains, rspamd, dkimsign, senderscore, dyndns filters, smarthosts, Berkeley DB aliases, passwd
 * files...), smtpd.conf(5)'s own examples, and configs OpenSMTPD 7.8 refuses, each checked with
 * `tsmtpd -n` on a machine that has what they name: /etc/mail, /etc/ssl, /etc/letsencrypt and
 * /etc/hosts from test/fixtures/corpus/machine, and interfaces eth0, em0, lo0 and egress, made in
 * private namespaces. The accepted ones are also parsed here on any machine.
 *
 * Each was checked against OpenSMTPD's own `smtpd -n` as well (Debian's 6.8.0p2, unpacked, in the
 * same kind of machine): it gives the same verdict for every file but the three that use what only
 * tsmtpd or 7.x have (`filter ... module`, the passwd backend without opensmtpd-extras, several
 * pki on one listener), and foreign-address.conf, which smtpd only fails to bind when it starts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/config/load.js';
import { TSMTPD_BIN } from '../harness/daemon.js';
import { machineCommand, type MachineSpec } from '../harness/machine.js';
import { peerSkip } from '../harness/peers.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures');
const CORPUS = join(FIXTURES, 'corpus');

async function confs(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.endsWith('.conf')).sort().map((f) => join(dir, f));
}

/** Every file of the machine's /etc; keys readable by root only, as ssl_load_key() wants. */
async function machineEtc(): Promise<MachineSpec['etc']> {
  const etc: NonNullable<MachineSpec['etc']> = {};
  const root = join(CORPUS, 'machine/etc');
  const walk = async (dir: string): Promise<void> => {
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      if ((await stat(path)).isDirectory()) await walk(path);
      else etc[relative(root, path)] = { content: await readFile(path), mode: /key|privkey/.test(name) ? 0o600 : 0o644 };
    }
  };
  await walk(root);
  // made by OpenSMTPD's makemap, as newaliases leaves it
  etc['mail/aliases.db'] = await readFile(join(FIXTURES, '../table/fixtures/bdb/aliases.db'));
  return etc;
}

const INTERFACES = [
  { name: 'eth0', addresses: ['192.0.2.10/24', '2001:db8::10/64'] },
  { name: 'em0', addresses: ['198.51.100.10/24'] },
  { name: 'lo0', addresses: ['203.0.113.1/32'] },
  { name: 'egress', addresses: ['203.0.113.10/24'] },
];

/** `# refused at line N: REGEX` on a refused config's first line. */
function expectation(text: string): { line: number; pattern: RegExp } {
  const m = /^# refused at line (\d+): (.*)$/m.exec(text);
  assert.ok(m, 'a refused config says where and why on its first line');
  return { line: Number(m[1]), pattern: new RegExp(m[2]!) };
}

test('every accepted config parses, on any machine', async () => {
  for (const file of [...(await confs(join(CORPUS, 'accepted'))), ...(await confs(join(FIXTURES, 'smtpd.conf.5')))]) {
    const text = await readFile(file, 'utf8');
    assert.doesNotThrow(() => parseConfig(text, { file }), file);
  }
});

test('tsmtpd -n on a machine that has what they name: accepted ones pass, refused ones fail at their line', { skip: peerSkip('namespaces') }, async (t) => {
  const accepted = [...(await confs(join(CORPUS, 'accepted'))), ...(await confs(join(FIXTURES, 'smtpd.conf.5')))];
  const refused = await confs(join(CORPUS, 'refused'));
  const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-corpus-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // the filters the configs name, present for -n (which checks that they exist, not what they do)
  const libexec = join(dir, 'libexec');
  await mkdir(libexec);
  for (const f of ['filter-rspamd', 'filter-dkimsign', 'filter-senderscore']) {
    await writeFile(join(libexec, f), '#!/bin/sh\nexit 0\n');
    await chmod(join(libexec, f), 0o755);
  }
  const script = 'for f; do "$NODE" "$TSMTPD" -n -f "$f" 2>&1; echo "@@ $? $f"; done';
  const files = [...accepted, ...refused];
  const { file, args } = await machineCommand(dir, { etc: await machineEtc(), interfaces: INTERFACES }, ['/bin/sh', '-c', script, 'corpus', ...files]);
  const r = spawnSync(file, args, {
    // ~150 daemons started one after the other: minutes on a loaded 2-core machine
    encoding: 'utf8', timeout: 600_000,
    env: { ...process.env, NODE: process.execPath, TSMTPD: TSMTPD_BIN, TSMTPD_LIBEXEC: libexec },
  });
  assert.equal(r.status, 0, r.stderr);
  const results = new Map<string, { code: number; output: string }>();
  let output = '';
  for (const line of r.stdout.split('\n')) {
    const m = /^@@ (\d+) (.*)$/.exec(line);
    if (!m) { output += line + '\n'; continue; }
    results.set(m[2]!, { code: Number(m[1]), output });
    output = '';
  }
  for (const f of accepted) {
    assert.deepEqual(results.get(f), { code: 0, output: 'configuration OK\n' }, relative(CORPUS, f));
  }
  for (const f of refused) {
    const { line, pattern } = expectation(await readFile(f, 'utf8'));
    const got = results.get(f)!;
    assert.equal(got.code, 1, `${relative(CORPUS, f)}: ${got.output}`);
    assert.match(got.output, new RegExp(`^tsmtpd: ${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${line}: `), relative(CORPUS, f));
    assert.match(got.output, pattern, relative(CORPUS, f));
  }
});
