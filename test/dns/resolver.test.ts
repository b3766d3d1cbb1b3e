/**
 * The lka's resolver against a DNS server this test runs on loopback: every answer status, the
 * TTL cache on a fake clock, negative caching, one query for concurrent lookups, truncation
 * answered over TCP, local answers with no query at all, and forward-confirmed reverse DNS.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../src/clock.js';
import { createResolver, fcrdnsCheck } from '../../src/dns/index.js';
import { parseHosts } from '../../src/dns/hosts.js';
import type { Resolver } from '../../src/dns/resolver.js';
import { startDnsServer, type DnsServer } from '../harness/dns-server.js';

let dns: DnsServer;
const clock = new FakeClock();
let resolver: Resolver;

before(async () => {
  dns = await startDnsServer({
    'example.test': { MX: [{ preference: 10, exchange: 'mx1.example.test' }, { preference: 20, exchange: 'mx2.example.test' }], TXT: ['v=spf1 -all'], ttl: 300 },
    'mx1.example.test': { A: ['127.0.0.2'], AAAA: ['::1'] },
    'nullmx.test': { MX: [{ preference: 0, exchange: '.' }] },
    'noa.test': { TXT: ['only text'] },
    'broken.test': { servfail: true },
    'big.test': { A: ['127.0.0.9'], truncate: true },
    'alias.test': { CNAME: 'mx1.example.test' },
    'slow.test': { A: ['127.0.0.8'], delayMs: 100 },
    // documentation addresses (RFC 5737) as data only: the questions go to this server on loopback
    '5.2.0.192.in-addr.arpa': { PTR: ['mx5.example.test'] },
    'mx5.example.test': { A: ['192.0.2.5'] },
    '6.2.0.192.in-addr.arpa': { PTR: ['liar.example.test'] },
    'liar.example.test': { A: ['192.0.2.66'] },
  });
  resolver = createResolver({ resolvers: [{ address: '127.0.0.1', port: dns.port }] }, clock, {
    hosts: parseHosts('127.0.0.1 localhost\n10.9.8.7 intranet.test\n'),
  });
});
after(async () => {
  resolver.close();
  await dns.close();
});

test('MX, A, AAAA, TXT and CNAME answers', async () => {
  const mx = await resolver.mx('example.test');
  assert.equal(mx.status, 'ok');
  assert.deepEqual(mx.status === 'ok' && mx.records.map((r) => [r.preference, r.exchange]), [[10, 'mx1.example.test'], [20, 'mx2.example.test']]);
  assert.deepEqual(await resolver.a('mx1.example.test'), { status: 'ok', records: ['127.0.0.2'], ttl: 60 });
  assert.equal((await resolver.aaaa('mx1.example.test')).status, 'ok');
  assert.deepEqual((await resolver.txt('example.test')).status === 'ok' && (await resolver.txt('example.test')), { status: 'ok', records: ['v=spf1 -all'], ttl: 300 });
  const viaCname = await resolver.a('alias.test');
  assert.deepEqual(viaCname.status === 'ok' && viaCname.records, ['127.0.0.2']);
});

test('NXDOMAIN, NODATA and SERVFAIL are told apart; a null MX is an answer', async () => {
  assert.deepEqual(await resolver.a('nowhere.test'), { status: 'nxdomain' });
  assert.deepEqual(await resolver.a('noa.test'), { status: 'nodata' });
  assert.equal((await resolver.a('broken.test')).status, 'tempfail');
  const n = await resolver.mx('nullmx.test');
  assert.deepEqual(n.status === 'ok' && n.records, [{ preference: 0, exchange: '' }]);
});

test('a truncated UDP answer is asked again over TCP', async () => {
  const r = await resolver.a('big.test');
  assert.deepEqual(r.status === 'ok' && r.records, ['127.0.0.9']);
  assert.ok(dns.queries.some((q) => q.name === 'big.test' && q.transport === 'tcp'));
});

test('answers are cached for their TTL on the clock, and concurrent lookups share one query', async () => {
  const count = () => dns.queries.filter((q) => q.name === 'slow.test').length;
  await Promise.all([resolver.a('slow.test'), resolver.a('slow.test'), resolver.a('slow.test')]);
  assert.equal(count(), 1);
  await resolver.a('slow.test');
  assert.equal(count(), 1, 'cached');
  await clock.advance(61_000);
  await resolver.a('slow.test');
  assert.equal(count(), 2, 'asked again after the TTL');
  const before = dns.queries.filter((q) => q.name === 'nowhere2.test').length;
  await resolver.a('nowhere2.test');
  await resolver.a('nowhere2.test');
  assert.equal(dns.queries.filter((q) => q.name === 'nowhere2.test').length, before + 1, 'negative answers are cached too');
});

test('loopback, localhost, IP literals and /etc/hosts names need no query', async () => {
  const n = dns.queries.length;
  assert.deepEqual((await resolver.a('localhost')).status, 'ok');
  assert.deepEqual(await resolver.a('intranet.test'), { status: 'ok', records: ['10.9.8.7'], ttl: 86_400 });
  assert.deepEqual((await resolver.ptr('127.0.0.1')), { status: 'ok', records: ['localhost'], ttl: 86_400 });
  assert.deepEqual((await resolver.a('192.0.2.1')), { status: 'ok', records: ['192.0.2.1'], ttl: 86_400 });
  assert.equal(dns.queries.length, n);
});

test('forward-confirmed reverse DNS: pass when the name maps back, fail when it lies', async () => {
  assert.deepEqual(await fcrdnsCheck(resolver, '192.0.2.5'), { rdns: 'mx5.example.test', fcrdns: 'pass' });
  assert.deepEqual(await fcrdnsCheck(resolver, '192.0.2.6'), { rdns: 'liar.example.test', fcrdns: 'fail' });
  assert.deepEqual(await fcrdnsCheck(resolver, '192.0.2.7'), { fcrdns: 'fail' });
});
