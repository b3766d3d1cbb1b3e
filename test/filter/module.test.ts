/**
 * The TypeScript filter API and the DNSBL filter built on it, on a real daemon with a DNS
 * server run by the test: DNS answered by the daemon on the filter's behalf, a throwing and a
 * stalling handler, and 100 concurrent sessions flowing while one DNSBL zone answers after 2 s.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { eventually, startMailHost, type MailHost } from '../harness/mail.js';
import { SmtpTestClient } from '../harness/net.js';
import { startDnsServer, type DnsServer } from '../harness/dns-server.js';
import { TSMTPD_BIN } from '../harness/daemon.js';
import { fileURLToPath } from 'node:url';
import { parseOptions, reverseName } from '../../src/filter/modules/dnsbl.js';

/** The README's worked example, run as written. */
const EXAMPLE = resolve(dirname(fileURLToPath(import.meta.url)), '../../../examples/filters/sender-domain.js');

async function session(port: number, opts: { from?: string; helo?: string; rcpt?: string; localAddress?: string } = {}) {
  const c = await SmtpTestClient.connect(port, '127.0.0.1', opts.localAddress);
  const banner = await c.reply();
  const ehlo = await c.cmd(`EHLO ${opts.helo ?? 'client.example.test'}`);
  const mail = await c.cmd(`MAIL FROM:<${opts.from ?? 'someone@good.test'}>`);
  const rcpt = mail.code === 250 ? await c.cmd(`RCPT TO:<${opts.rcpt ?? 'alice@example.test'}>`) : null;
  return { c, banner, ehlo, mail, rcpt };
}

describe('TypeScript filter modules', () => {
  let host: MailHost;
  let dns: DnsServer;

  before(async () => {
    dns = await startDnsServer({
      'good.test': { MX: [{ preference: 10, exchange: 'mx.good.test' }] },
    });
    const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-module-'));
    // the lka, which loads the module, runs as the daemon's unprivileged user
    await chmod(dir, 0o755);
    const module = join(dir, 'checks.js');
    // a module as an admin would write it: plain objects, no import needed
    await writeFile(module, `
      export default function create(options, services) {
        return {
          phases: {
            async 'mail-from'(ev) {
              const domain = ev.param.split('@')[1] ?? '';
              const mx = await services.dns.mx(domain);
              services.increment('mx-check', { status: mx.status });
              if (mx.status === 'nxdomain') return { decision: 'reject', reply: '550 5.1.8 Sender domain ' + domain + ' does not exist' };
              return { decision: 'proceed' };
            },
            helo(ev) {
              if (ev.param === 'boom.test') throw new Error('handler bug');
              return { decision: 'proceed' };
            },
            'rcpt-to'(ev) {
              if (ev.param.startsWith('slow@')) return new Promise(() => {});
              services.log(ev.session.id, { checked: ev.param, option: options[0] });
              return { decision: 'proceed' };
            },
          },
        };
      }
    `);
    host = await startMailHost({
      listen: false,
      extra: [
        'smtp timeout 2',
        `resolver "127.0.0.1:${dns.port}"`,
        `filter "checks" module "${module}" "opt-one"`,
        'listen on 127.0.0.1 port %PORT% hostname mx.example.test filter "checks"',
        `filter "example" module "${EXAMPLE}" "log"`,
        'listen on 127.0.0.3 port %PORT% hostname mx.example.test filter "example"',
      ].join('\n'),
    });
  });
  after(async () => {
    await host?.stop();
    await dns?.close();
  });

  it('a handler awaits DNS the daemon performs for it, and decides on the answer', async () => {
    const refused = await session(host.port, { from: 'x@nowhere.test' });
    assert.equal(refused.mail.code, 550);
    assert.match(refused.mail.text, /Sender domain nowhere\.test does not exist/);
    refused.c.close();
    const ok = await session(host.port, { from: 'x@good.test' });
    assert.equal(ok.mail.code, 250);
    assert.equal(ok.rcpt!.code, 250);
    ok.c.close();
    assert.ok(dns.queries.some((q) => q.name === 'nowhere.test' && q.type === 'MX'));
    await host.daemon.waitForLog(/filter-report filter=checks checked=alice@example\.test option=opt-one/);
  });

  it("the README's example module refuses a sender domain that does not exist", async () => {
    const c = await SmtpTestClient.connect(host.port, '127.0.0.3');
    await c.reply();
    await c.cmd('EHLO client.example.test');
    const r = await c.cmd('MAIL FROM:<x@missing.test>');
    assert.equal(r.code, 550);
    assert.match(r.text, /5\.1\.8 Sender domain missing\.test does not exist/);
    assert.equal((await c.cmd('MAIL FROM:<x@good.test>')).code, 250);
    c.close();
    await host.daemon.waitForLog(/filter-report filter=example refused=missing\.test/);
  });

  it('a throwing handler fails its command with a temporary error, and the daemon goes on', async () => {
    const c = await SmtpTestClient.connect(host.port);
    await c.reply();
    // outside a transaction RFC 5321 allows no 4xx reply but 421, which ends the session
    const r = await c.cmd('HELO boom.test');
    assert.equal(r.code, 421);
    await c.closedByPeer();
    await host.daemon.waitForLog(/filter-error filter=checks phase=helo error="handler bug"/);
    const again = await session(host.port, { from: 'x@good.test' });
    assert.equal(again.rcpt!.code, 250);
    again.c.close();
  });

  it('a handler that never answers is cut off at its deadline', async () => {
    const s = await session(host.port, { from: 'x@good.test', rcpt: 'slow@example.test' });
    assert.equal(s.rcpt!.code, 451);
    s.c.close();
    await host.daemon.waitForLog(/filter-error filter=checks phase=rcpt-to error="no decision within 1000 ms"/);
  });
});

describe('DNSBL filter', () => {
  let host: MailHost;
  let dns: DnsServer;
  const CTL = resolve(dirname(TSMTPD_BIN), 'tsmtpctl.js');

  before(async () => {
    dns = await startDnsServer({
      // slow.test answers after 2 s, listed or not (inside the resolver's 5 s first try)
      '2.0.0.127.slow.test': { A: ['127.0.0.2'], delayMs: 2000 },
      '1.0.0.127.slow.test': { delayMs: 2000 },
      '9.0.0.127.slow.test': { A: ['127.0.0.2'] },
      // fast.test lists .2 with a code that does not count for it, and .5 with one that does
      '2.0.0.127.fast.test': { A: ['127.0.0.10'] },
      '5.0.0.127.fast.test': { A: ['127.0.0.4'] },
      '5.0.0.127.slow.test': { A: ['127.0.0.3'] },
    });
    host = await startMailHost({
      listen: false,
      extra: [
        `resolver "127.0.0.1:${dns.port}"`,
        'table dnsbl-allow { 127.0.0.9 }',
        'filter "bl" module "dnsbl" "zone=slow.test:2:127.0.0.2,127.0.0.3" "zone=fast.test:1:127.0.0.4" "threshold=2" "phase=rcpt-to" "allow=<dnsbl-allow>" "reply=554 5.7.1 Client %ip listed by %zones"',
        'filter "bl-connect" module "dnsbl" "zone=fast.test:1:127.0.0.4"',
        'listen on 127.0.0.1 port %PORT% hostname mx.example.test filter "bl"',
        'listen on 127.0.0.6 port %PORT% hostname mx.example.test filter "bl-connect"',
        'listen on 127.0.0.4 port %PORT% hostname mx.example.test',
      ].join('\n'),
    });
  });
  after(async () => {
    await host?.stop();
    await dns?.close();
  });

  it('100 concurrent sessions keep flowing while a zone answers after 2 s; the listed client is refused at RCPT', async () => {
    let filteredDone = false;
    const flood = Array.from({ length: 100 }, async () => {
      const s = await session(host.port, { from: 'x@good.test' });
      filteredDone = true;
      assert.equal(s.rcpt!.code, 250);
      assert.equal((await s.c.cmd('DATA')).code, 354);
      const r = await s.c.cmd('Subject: flood\r\n\r\nhello\r\n.');
      s.c.close();
      return r.code;
    });
    const listed = session(host.port, { localAddress: '127.0.0.2' });
    // the dialogue runs while the lookups are pending: banner, EHLO and MAIL do not wait
    const plain = await session(host.port, { localAddress: '127.0.0.7' });
    assert.equal(plain.mail.code, 250);
    const unfiltered = await session(host.port, { localAddress: '127.0.0.4' });
    assert.equal(unfiltered.rcpt!.code, 250);
    assert.equal(filteredDone, false, 'sessions elsewhere were answered before the slow zone did');
    unfiltered.c.close();
    plain.c.close();

    const codes = await Promise.all(flood);
    assert.deepEqual(codes, Array(100).fill(250));
    const l = await listed;
    assert.equal(l.mail.code, 250);
    assert.equal(l.rcpt!.code, 554);
    assert.match(l.rcpt!.text, /5\.7\.1 Client 127\.0\.0\.2 listed by slow\.test/);
    // every RCPT of a listed client is refused, not just the first
    assert.equal((await l.c.cmd('RCPT TO:<bob@example.test>')).code, 554);
    l.c.close();
    // one lookup for the 101 sessions from 127.0.0.1, shared while in flight, then cached (the
    // resolver may send a slow query again while it waits: a few packets, never one per session)
    assert.ok(dns.queries.filter((q) => q.name === '1.0.0.127.slow.test').length <= 5);
  });

  it('weights add up across zones, return codes are matched, the allow-list skips lookups', async () => {
    const both = await session(host.port, { localAddress: '127.0.0.5' });
    assert.equal(both.rcpt!.code, 554);
    assert.match(both.rcpt!.text, /listed by slow\.test, fast\.test/);
    both.c.close();
    const allowed = await session(host.port, { localAddress: '127.0.0.9' });
    assert.equal(allowed.rcpt!.code, 250);
    allowed.c.close();
    assert.equal(dns.queries.filter((q) => q.name.startsWith('9.0.0.127.')).length, 0);
  });

  it('decides at connect when told to, and counts per zone', async () => {
    const c = await SmtpTestClient.connect(host.port, '127.0.0.6', '127.0.0.5');
    const banner = await c.reply();
    assert.equal(banner.code, 554);
    await c.closedByPeer();
    // counters reach the stat role summed every 100 ms (bus/stat-coalescer.ts), not with the refusal
    const stats = await eventually(async () => {
      const r = spawnSync(process.execPath, [CTL, '--spool', host.daemon.spool, 'show', 'stats'], { encoding: 'utf8' });
      return r.status === 0 && /filter\.bl-connect\.refused\{action="reject"\}=1/.test(r.stdout) ? r : undefined;
    }, 'filter.bl-connect.refused in show stats');
    assert.match(stats.stdout, /filter\.bl\.listed\{zone="slow\.test"\}=\d+/);
  });

  it('builds reverse names for IPv4 and IPv6 (nibbles) and parses its options strictly', () => {
    assert.equal(reverseName('192.0.2.1', 'bl.test'), '1.2.0.192.bl.test');
    assert.equal(
      reverseName('2001:db8::1', 'bl.test'),
      '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test',
    );
    assert.equal(reverseName('not-an-ip', 'bl.test'), null);
    assert.throws(() => parseOptions([]), /at least one zone/);
    assert.throws(() => parseOptions(['zone=bl.test:0']), /bad weight/);
    assert.throws(() => parseOptions(['zone=bl.test', 'phase=data']), /phase must be/);
    assert.throws(() => parseOptions(['zone=bl.test:1:10.0.0.1']), /127\.x\.y\.z/);
    assert.deepEqual(parseOptions(['zone=bl.test:3:127.0.0.2', 'threshold=3']).zones[0], { name: 'bl.test', weight: 3, codes: new Set(['127.0.0.2']) });
  });
});
