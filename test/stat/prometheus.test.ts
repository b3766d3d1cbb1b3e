/**
 * The Prometheus output parses with the reference parser (python3-prometheus-client's
 * text_string_to_metric_families) and is served over HTTP by the stat role.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Bus } from '../../src/bus/bus.js';
import { FakeClock } from '../../src/clock.js';
import type { Config } from '../../src/config/types.js';
import { createStatRole } from '../../src/stat/role.js';
import { formatPrometheus } from '../../src/stat/prometheus.js';
import { RamStat } from '../../src/stat/ram.js';
import { freePort } from '../harness/net.js';
import { peerSkip } from '../harness/peers.js';

const PYTHON = '/usr/bin/python3';
const PARSE = `
import sys, json
from prometheus_client.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append([fam.name, fam.type, s.name, s.labels, s.value])
print(json.dumps(out))
`;

const skip = peerSkip('python3-prometheus-client');

test('the exposition text parses with the reference parser, labels and escapes intact', { skip }, () => {
  const s = new RamStat();
  s.increment('mta.delivery', { domain: 'a.example', result: 'ok' }, 3);
  s.increment('mta.delivery', { domain: 'b"x\\y.example', result: 'ok' }, 1);
  s.set('queue.envelope', {}, 7);
  s.increment('smtp.session-tls', {}, 2);
  const text = formatPrometheus(s.iterate(), 42);
  const parsed = JSON.parse(execFileSync(PYTHON, ['-c', PARSE], { input: text }).toString()) as [string, string, string, Record<string, string>, number][];
  assert.deepEqual(parsed, [
    ['tsmtpd_uptime_seconds', 'gauge', 'tsmtpd_uptime_seconds', {}, 42],
    ['tsmtpd_mta_delivery', 'counter', 'tsmtpd_mta_delivery_total', { domain: 'a.example', result: 'ok' }, 3],
    ['tsmtpd_mta_delivery', 'counter', 'tsmtpd_mta_delivery_total', { domain: 'b"x\\y.example', result: 'ok' }, 1],
    ['tsmtpd_queue_envelope', 'gauge', 'tsmtpd_queue_envelope', {}, 7],
    ['tsmtpd_smtp_session_tls', 'counter', 'tsmtpd_smtp_session_tls_total', {}, 2],
  ]);
});

test('the stat role serves counters it was sent over the bus at /metrics', async () => {
  const port = await freePort();
  const config = { statListen: { address: '127.0.0.1', port, where: { file: 'x', line: 1 } } } as unknown as Config;
  const bus = new Bus({ checkSerializable: true });
  const role = createStatRole({
    config, bus: bus.endpoint('stat'), clock: new FakeClock(), spool: '/nonexistent',
    backends: { queue: 'ram', scheduler: 'ramqueue', stat: 'ram' }, serverName: 'mx.test', verbose: false,
  });
  bus.register(role);
  bus.register({ name: 'mta', peers: ['stat'], handlers: {} as never, start: async () => {}, stop: async () => {} });
  await role.start();
  try {
    await bus.request('mta', 'stat.increment', { key: 'mta.delivery', labels: { domain: 'one.example' } });
    await bus.request('mta', 'stat.increment', { key: 'mta.delivery', labels: { domain: 'two.example' }, by: 2 });
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /version=0\.0\.4/);
    const body = await res.text();
    assert.match(body, /^tsmtpd_mta_delivery_total\{domain="one\.example"\} 1$/m);
    assert.match(body, /^tsmtpd_mta_delivery_total\{domain="two\.example"\} 2$/m);
    assert.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);
  } finally {
    await role.stop();
  }
});
