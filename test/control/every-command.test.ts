/**
 * Issue 7's sweep: every tsmtpctl command not covered elsewhere, against a running daemon that
 * delivers to two local domains and relays to a sink: `show hosts|relays|routes|hoststats`,
 * `resume route`, `show status`, `mailq` and `newaliases` personalities, `spf walk` against a
 * DNS server on loopback, and per-domain counters in `show stats` and in Prometheus' format.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { symlink, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { TSMTPD_BIN } from '../harness/daemon.js';
import { eventually, sendMessage, startMailHost, type MailHost } from '../harness/mail.js';
import { startDnsServer, type DnsServer } from '../harness/dns-server.js';
import { freePort } from '../harness/net.js';
import { peerSkip } from '../harness/peers.js';
import { Sink } from '../mta/sink.js';

const CTL = resolve(dirname(TSMTPD_BIN), 'tsmtpctl.js');
let host: MailHost;
let sink: Sink;
let dns: DnsServer;
let statPort: number;

function ctl(args: string[], opts: { input?: string; argv0?: string } = {}) {
  return spawnSync(process.execPath, [opts.argv0 ?? CTL, '--spool', host.daemon.spool, ...args], { encoding: 'utf8', timeout: 10_000, input: opts.input ?? '' });
}
function ok(...args: string[]): string {
  const r = ctl(args);
  assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  sink = await Sink.start({ host: '127.0.0.8', caps: ['PIPELINING'] });
  dns = await startDnsServer({
    'spf.test': { TXT: ['v=spf1 ip4:192.0.2.0/24 include:inc.spf.test a:host.spf.test -all'] },
    'inc.spf.test': { TXT: ['v=spf1 ip6:2001:db8::/32 ~all'] },
    'host.spf.test': { A: ['198.51.100.7'] },
  });
  statPort = await freePort();
  host = await startMailHost({
    extra: [
      'table vdomains { second.test }',
      'action "second" maildir "%DIR%/maildir/%{dest.user:lowercase}" userbase <users>',
      `action "out" relay host smtp://127.0.0.8:${sink.port}`,
      `stat listen on 127.0.0.1 port ${statPort}`,
    ].join('\n'),
    rules: [
      'match from any for domain <domains> action "local"',
      'match from any for domain <vdomains> action "second"',
      'match from any for domain "remote.test" action "out"',
    ].join('\n'),
  });
  for (const [to, subject] of [['alice@example.test', 's1'], ['bob@second.test', 's2'], ['x@remote.test', 's3']] as const) {
    assert.equal((await sendMessage(host.port, 'sender@client.test', [to], `Subject: ${subject}\r\n\r\nx`)).at(-1)!.code, 250);
  }
  await eventually(async () => sink.transactions.length === 1 && (await host.maildir('bob')).length === 1 && (await host.maildir('alice')).length === 1 || undefined, 'three deliveries');
});
after(async () => {
  await host.stop();
  await sink.close();
  await dns.close();
});

test('per-domain delivery counters, in show stats and in Prometheus', { skip: peerSkip('python3-prometheus-client') }, async () => {
  const stats = await eventually(async () => { const s = ok('show', 'stats'); return s.includes('second.test') ? s : undefined; }, 'counters');
  assert.match(stats, /^mda\.delivery\{domain="example\.test",result="ok"\}=1$/m);
  assert.match(stats, /^mda\.delivery\{domain="second\.test",result="ok"\}=1$/m);
  assert.match(stats, /^mta\.delivery\{domain="remote\.test",result="ok"\}=1$/m);
  assert.match(stats, /^smtp\.message\{listener="0"\}=3$/m);
  assert.match(stats, /^lka\.rcpt\{action="second",result="accept"\}=1$/m);
  const body = await (await fetch(`http://127.0.0.1:${statPort}/metrics`)).text();
  const parsed = spawnSync('/usr/bin/python3', ['-c', [
    'import sys',
    'from prometheus_client.parser import text_string_to_metric_families',
    'for f in text_string_to_metric_families(sys.stdin.read()):',
    '  for s in f.samples:',
    '    if "domain" in s.labels: print(s.name, s.labels["domain"], s.labels.get("result"), int(s.value))',
  ].join('\n')], { input: body, encoding: 'utf8' });
  assert.equal(parsed.status, 0, parsed.stderr);
  const lines = parsed.stdout.trim().split('\n').sort();
  assert.ok(lines.some((l) => /mda_delivery\S* example\.test ok 1/.test(l)), parsed.stdout);
  assert.ok(lines.some((l) => /mda_delivery\S* second\.test ok 1/.test(l)), parsed.stdout);
  assert.ok(lines.some((l) => /mta_delivery\S* remote\.test ok 1/.test(l)), parsed.stdout);
});

test('show hosts, relays, hoststats and routes; resume route', async () => {
  assert.match(ok('show', 'hosts'), /^127\.0\.0\.8 \(127\.0\.0\.8\) deliveries=1 lastconn=\d+s$/m);
  assert.match(ok('show', 'relays'), /relay=127\.0\.0\.8:\d+ connections=\d+ idle=\d+ opened=1 queued=0/);
  assert.match(ok('show', 'hoststats'), /^remote\.test\|\d+\|250 /m);
  assert.equal(ok('show', 'routes'), '');
  const json = JSON.parse(ok('--json', 'show', 'hoststats')) as { hoststats: { domain: string }[] };
  assert.deepEqual(json.hoststats.map((h) => h.domain), ['remote.test']);
  const r = ctl(['resume', 'route', 'any>192.0.2.1:25']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no such route/);
});

test('show status, and the mailq and newaliases personalities', async () => {
  const status = ok('show', 'status');
  // smtpctl's three lines, then every process of the daemon: the parent, the roles, the smtp workers
  assert.match(status, /^MDA running\nMTA running\nSMTP running\n/);
  const procs = status.split('\n').slice(3).filter(Boolean).map((l) => /^process (\S+) pid=\d+ user=\S+ uptime=\d+s restarts=0$/.exec(l)?.[1]);
  assert.deepEqual(procs.slice(0, 5), ['parent', 'control', 'lka', 'mta', 'queue']);
  assert.ok(procs.slice(5).every((p) => /^smtp\.\d+$/.test(p ?? '')) && procs.length >= 6, status);
  const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-argv0-'));
  try {
    await symlink(CTL, join(dir, 'mailq'));
    await symlink(CTL, join(dir, 'newaliases'));
    const mailq = ctl([], { argv0: join(dir, 'mailq') });
    assert.equal(mailq.status, 0, mailq.stderr);
    assert.equal(mailq.stdout, '', 'an empty queue');
    const newaliases = ctl([], { argv0: join(dir, 'newaliases') });
    assert.equal(newaliases.status, 0, newaliases.stderr);
    assert.match(newaliases.stdout, /command succeeded/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('spf walk follows include, a and ip mechanisms', async () => {
  // asynchronously: the DNS server answering it runs in this process
  const child = spawn(process.execPath, [CTL, '--resolver', `127.0.0.1:${dns.port}`, 'spf', 'walk'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.end('spf.test\n');
  const [code] = (await once(child, 'exit')) as [number];
  assert.equal(code, 0, err);
  assert.deepEqual(out.trim().split('\n').sort(), ['192.0.2.0/24', '198.51.100.7', '2001:db8::/32']);
});
