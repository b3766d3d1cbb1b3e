/**
 * Issue 16, starting on real machines: `listen on eth0` binds every address of the interface,
 * its IPv6 link-local one with the interface as scope (smtpd's interface() keeps sin6_scope_id;
 * without it bind() fails with EINVAL), and `listen on HOSTNAME` binds what the name resolves to
 * (host_dns()), through /etc/hosts or DNS. The interface lives in a network namespace the test
 * makes (never the host's own), and /etc/hosts in a private mount namespace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startDaemon } from '../harness/daemon.js';
import { startDnsServer } from '../harness/dns-server.js';
import { enterCommand, machineCommand } from '../harness/machine.js';
import { freePort, SmtpTestClient } from '../harness/net.js';
import { peerSkip } from '../harness/peers.js';

const TAIL = 'action "local" mbox\nmatch for local action "local"\n';

/** Run inside the daemon's network namespace: the banner of every address of eth0. */
const BANNERS = `
const net = require('node:net');
const port = Number(process.argv[1]);
const addrs = require('node:os').networkInterfaces().eth0.map((i) => i.address.startsWith('fe80:') ? i.address + '%eth0' : i.address);
Promise.all(addrs.map((host) => new Promise((resolve) => {
  const s = net.connect({ host, port }, () => undefined);
  s.once('data', (d) => { resolve([host, d.toString().split('\\r\\n')[0]]); s.destroy(); });
  s.once('error', (e) => resolve([host, e.code]));
}))).then((r) => console.log(JSON.stringify(r)));
`;

test('listen on eth0: every address answers, the link-local one bound as fe80::...%eth0', { skip: peerSkip('namespaces') }, async (t) => {
  const port = 2525;
  const d = await startDaemon({
    config: `listen on eth0 port ${port} hostname mx.test\n` + TAIL,
    wrap: (argv, dir) => machineCommand(dir, {
      interfaces: [{ name: 'eth0', addresses: ['192.0.2.10/24', '2001:db8::10/64'] }],
    }, argv),
  });
  t.after(async () => { await d.stop(); await d.cleanup(); });
  const { file, args } = enterCommand(d.process.pid!, [process.execPath, '-e', BANNERS, String(port)]);
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  const banners = JSON.parse(r.stdout) as [string, string][];
  assert.deepEqual(banners.map(([a]) => a.replace(/^fe80:.*%eth0$/, 'fe80::%eth0')).sort(), ['192.0.2.10', '2001:db8::10', 'fe80::%eth0']);
  for (const [host, banner] of banners) assert.match(banner, /^220 mx\.test ESMTP/, host);
});

test('listen on a name from /etc/hosts binds its address', { skip: peerSkip('namespaces') }, async (t) => {
  const port = await freePort('127.0.0.7');
  const d = await startDaemon({
    config: `listen on mx.hosts.test port ${port} hostname mx.hosts.test\n` + TAIL,
    wrap: (argv, dir) => machineCommand(dir, {
      etc: { hosts: '127.0.0.1 localhost\n::1 localhost\n127.0.0.7 mx.hosts.test\n' },
    }, argv),
  });
  t.after(async () => { await d.stop(); await d.cleanup(); });
  const c = await SmtpTestClient.connect(port, '127.0.0.7');
  assert.match((await c.reply()).text, /^mx\.hosts\.test ESMTP/);
  c.close();
});

test('listen on a name only DNS knows binds what the DNS server answers', async (t) => {
  const dns = await startDnsServer({ 'mx.dns.test': { A: ['127.0.0.8'] } });
  t.after(() => dns.close());
  const port = await freePort('127.0.0.8');
  const d = await startDaemon({ config: `resolver "127.0.0.1:${dns.port}"\nlisten on mx.dns.test port ${port} hostname mx.dns.test\n` + TAIL });
  t.after(async () => { await d.stop(); await d.cleanup(); });
  const c = await SmtpTestClient.connect(port, '127.0.0.8');
  assert.match((await c.reply()).text, /^mx\.dns\.test ESMTP/);
  c.close();
  assert.ok(dns.queries.some((q) => q.name === 'mx.dns.test' && q.type === 'A'));
});
