/**
 * Certificates for tests, made with the openssl command line in a temp directory: a CA and
 * server certificates signed by it, each for the DNS names given.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requirePeer } from './peers.js';

export interface TestCert {
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  ca: string;
  issue(name: string, altNames?: string[]): Promise<TestCert>;
}

function openssl(args: string[], cwd: string): void {
  requirePeer('openssl');
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export async function makeTestPki(dir?: string): Promise<TestPki> {
  const base = dir ?? (await mkdtemp(join(tmpdir(), 'tsmtpd-pki-')));
  // tables put here (credentials) are read by the daemon's unprivileged lka; keys stay 0600
  await chmod(base, 0o755);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=tsmtpd test CA', '-keyout', 'ca.key', '-out', 'ca.crt'], base);
  let serial = 1;
  return {
    dir: base,
    ca: join(base, 'ca.crt'),
    async issue(name, altNames = [name]) {
      const stem = `${name.replace(/[^a-z0-9.-]/gi, '_')}-${serial++}`;
      await writeFile(join(base, `${stem}.ext`), `subjectAltName=${altNames.map((n) => `DNS:${n}`).join(',')}\n`);
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}`,
        '-keyout', `${stem}.key`, '-out', `${stem}.csr`], base);
      openssl(['x509', '-req', '-in', `${stem}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
        '-extfile', `${stem}.ext`, '-out', `${stem}.crt`], base);
      return { cert: join(base, `${stem}.crt`), key: join(base, `${stem}.key`) };
    },
  };
}
