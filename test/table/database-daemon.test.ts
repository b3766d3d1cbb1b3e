/**
 * A postgres table in a running daemon: while the database answers, mail for its domains is
 * accepted and delivered; when it goes away, RCPT gets 451 (fail closed: no "not ours" 550, no
 * delivery elsewhere, no crash); `tsmtpctl update table` points the table at another server.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { TSMTPD_BIN } from '../harness/daemon.js';
import { pgAdmin, PG_ADMIN, TcpProxy, uniqueName } from '../harness/databases.js';
import { eventually, sendMessage, startMailHost, type MailHost } from '../harness/mail.js';
import { peerSkip } from '../harness/peers.js';

const CTL = resolve(dirname(TSMTPD_BIN), 'tsmtpctl.js');
const skip = peerSkip('postgresql');
const domains = uniqueName('tsmtpd_domains');
let host: MailHost;
let proxy: TcpProxy;
let confDir: string;

const conf = (port: number) => `conninfo host=127.0.0.1 port=${port} user=${PG_ADMIN.user} dbname=${PG_ADMIN.database} connect_timeout=2\n` +
  `query_domain SELECT domain FROM ${domains} WHERE domain = $1\n`;

before(async () => {
  if (skip) return;
  await pgAdmin(async (c) => {
    await c.query(`CREATE TABLE ${domains} (domain TEXT PRIMARY KEY)`);
    await c.query(`INSERT INTO ${domains} VALUES ('example.test')`);
  });
  proxy = await new TcpProxy(PG_ADMIN.port).start();
  confDir = await mkdtemp(join(tmpdir(), 'tsmtpd-pgconf-'));
  // the lka, unprivileged when the tests run as root, reads it
  await chmod(confDir, 0o755);
  await writeFile(join(confDir, 'pg.conf'), conf(proxy.port), { mode: 0o644 });
  host = await startMailHost({
    extra: `table pgdomains postgres:${confDir}/pg.conf`,
    rules: 'match from any for domain <pgdomains> action "local"',
  });
});

after(async () => {
  if (skip) return;
  await host?.stop();
  await proxy?.cut();
  await rm(confDir, { recursive: true, force: true });
  await pgAdmin((c) => c.query(`DROP TABLE IF EXISTS ${domains}`));
});

test('postgres domain table: accepted while the database answers, 451 while it is away, update table moves it', { skip }, async () => {
  let r = await sendMessage(host.port, 'sender@client.test', ['alice@example.test'], 'Subject: pg-up\r\n\r\nx');
  assert.equal(r.at(-1)!.code, 250);
  await eventually(async () => (await host.maildir('alice')).some((m) => m.includes('pg-up')), 'delivery');
  assert.equal((await sendMessage(host.port, 'sender@client.test', ['alice@other.test'], 'x'))[3]!.code, 550, 'a domain not in the table');

  await proxy.cut();
  r = await sendMessage(host.port, 'sender@client.test', ['alice@example.test'], 'Subject: pg-down\r\n\r\nx');
  assert.equal(r[3]!.code, 451, `RCPT while the database is away: ${JSON.stringify(r[3])}`);
  r = await sendMessage(host.port, 'sender@client.test', ['alice@other.test'], 'x');
  assert.equal(r[3]!.code, 451, 'not even a miss is answered');
  await host.daemon.waitForLog(/table-error/);
  assert.equal(host.daemon.process.exitCode, null, 'the daemon lives');

  // the proxy stays cut: only the new config can answer
  await writeFile(join(confDir, 'pg.conf'), conf(PG_ADMIN.port));
  const u = spawnSync(process.execPath, [CTL, '--spool', host.daemon.spool, 'update', 'table', 'pgdomains'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(u.status, 0, u.stderr);
  r = await sendMessage(host.port, 'sender@client.test', ['alice@example.test'], 'Subject: pg-moved\r\n\r\nx');
  assert.equal(r.at(-1)!.code, 250);
  await eventually(async () => (await host.maildir('alice')).some((m) => m.includes('pg-moved')), 'delivery after update');
  assert.equal((await host.maildir('alice')).filter((m) => m.includes('pg-down')).length, 0);
});
