/** TLS policy and relay URLs through the mta role: action `tls`, `tls no-verify`, smtps, smtp+notls, labels with credentials, LMTP, downgrade. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TableDecl } from '../../src/config/types.js';
import { configureLog } from '../../src/log.js';
import { freePort } from '../harness/net.js';
import { MapResolver, mtaEnvelope, relayAction, startMta } from './helpers.js';
import { makeCert, Sink, type SinkOptions } from './sink.js';

/** Warnings are kept: a TLS downgrade must be logged at the default level, without -v. */
const warnings: string[] = [];
configureLog({ sink: { write: (line) => warnings.push(line) }, level: 'warn', timestamps: false });
const cert = makeCert(['mx1.test']);
const resolver = () => new MapResolver({ mx: { 'dst.test': [[10, 'mx1.test']] }, a: { 'mx1.test': ['127.0.0.5'] } });
const where = { file: 't', line: 1 };

async function setup(t: { after(fn: () => Promise<void>): void }, sinkOpts: Partial<SinkOptions>, relay: Parameters<typeof relayAction>[0], extra: { tables?: TableDecl[]; ca?: boolean } = {}) {
  const port = await freePort('127.0.0.5');
  const sink = await Sink.start({ host: '127.0.0.5', port, cert, ...sinkOpts });
  const r = typeof relay?.host === 'string' ? { ...relay, host: relay.host.replace('PORT', String(port)) } : relay;
  const mta = await startMta([relayAction(r)], {
    resolver: resolver(),
    ...(extra.ca === false ? {} : { ca: [cert.cert] }),
    cfg: { mta: { port, limits: [] }, tables: new Map((extra.tables ?? []).map((d) => [d.name, d])) },
  });
  t.after(async () => { await mta.stop(); await sink.close(); });
  return { sink, mta };
}

test('action tls: STARTTLS required and the certificate verified against the MX name', async (t) => {
  const { sink, mta } = await setup(t, { caps: ['STARTTLS'] }, { tls: 'required' });
  assert.equal((await mta.deliver(mtaEnvelope(1))).result, 'ok');
  assert.equal(sink.transactions[0]!.tls, true);
});

test('action tls against an unknown CA fails; tls no-verify accepts it', async (t) => {
  const a = await setup(t, { caps: ['STARTTLS'] }, { tls: 'required' }, { ca: false });
  const r = await a.mta.deliver(mtaEnvelope(1));
  assert.equal(r.result, 'tempfail');
  assert.match(r.detail, /certificate/i);
  assert.equal(a.sink.transactions.length, 0);
  const b = await setup(t, { caps: ['STARTTLS'] }, { tls: 'no-verify' }, { ca: false });
  assert.equal((await b.mta.deliver(mtaEnvelope(2))).result, 'ok');
  assert.equal(b.sink.transactions[0]!.tls, true);
});

test('action tls with a server that offers no STARTTLS: tempfail, nothing sent in plaintext', async (t) => {
  const { sink, mta } = await setup(t, { caps: [] }, { tls: 'required' });
  const r = await mta.deliver(mtaEnvelope(1));
  assert.equal(r.result, 'tempfail');
  assert.match(r.detail, /STARTTLS not offered/);
  assert.ok(!sink.commands.flat().some((c) => c.startsWith('MAIL')));
});

test('opportunistic: a broken handshake is retried once in plaintext, with a warning and a count (issue 13)', async (t) => {
  const { sink, mta } = await setup(t, { caps: ['STARTTLS'], brokenTls: true }, {});
  assert.equal((await mta.deliver(mtaEnvelope(1))).result, 'ok');
  assert.equal(sink.connections, 2);
  assert.equal(sink.transactions[0]!.tls, false);
  assert.ok(warnings.some((l) => /mta tls-downgrade address=127\.0\.0\.5:\d+ host=mx1\.test reason="TLS handshake failed: .+"/.test(l)), warnings.join('\n'));
  assert.deepEqual(mta.counted.filter((c) => c.startsWith('mta.tls')), ['mta.tls.downgrade']);
});

test('opportunistic: STARTTLS offered then refused goes on in plaintext, with a warning and a count (issue 13)', async (t) => {
  const { sink, mta } = await setup(t, { caps: ['STARTTLS'], replies: { STARTTLS: '454 4.7.0 TLS not available now' } }, {});
  assert.equal((await mta.deliver(mtaEnvelope(1))).result, 'ok');
  assert.equal(sink.transactions[0]!.tls, false);
  assert.ok(warnings.some((l) => /mta tls-downgrade .*reason="STARTTLS rejected: 454 4\.7\.0 TLS not available now"/.test(l)), warnings.join('\n'));
  assert.deepEqual(mta.counted.filter((c) => c.startsWith('mta.tls')), ['mta.tls.downgrade']);
});

test('opportunistic: a server without STARTTLS, or a handshake that works, is no downgrade', async (t) => {
  const a = await setup(t, { caps: [] }, {});
  const b = await setup(t, { caps: ['STARTTLS'] }, {});
  assert.equal((await a.mta.deliver(mtaEnvelope(1))).result, 'ok');
  assert.equal((await b.mta.deliver(mtaEnvelope(2))).result, 'ok');
  assert.equal(b.sink.transactions[0]!.tls, true);
  assert.deepEqual([...a.mta.counted, ...b.mta.counted].filter((c) => c.startsWith('mta.tls')), []);
});

test('relay URLs: smtps:// verifies from the first byte; smtp+notls:// never starts TLS', async (t) => {
  const a = await setup(t, { smtps: true }, { host: 'smtps://mx1.test:PORT' });
  assert.equal((await a.mta.deliver(mtaEnvelope(1))).result, 'ok');
  assert.equal(a.sink.transactions[0]!.tls, true);
  const b = await setup(t, { caps: ['STARTTLS'] }, { host: 'smtp+notls://mx1.test:PORT' });
  assert.equal((await b.mta.deliver(mtaEnvelope(2))).result, 'ok');
  assert.equal(b.sink.transactions[0]!.tls, false);
  const c = await setup(t, { caps: ['STARTTLS'] }, { host: 'smtp+notls://mx1.test:PORT', tls: 'required' });
  assert.deepEqual(await c.mta.deliver(mtaEnvelope(3)), { result: 'tempfail', enhanced: '4.7.0', detail: 'TLS required for relaying' });
});

test('smtp+tls://label@host: credentials from the auth table, AUTH only after STARTTLS', async (t) => {
  const secrets: TableDecl = { name: 'secrets', backend: 'static', config: '', inline: { kind: 'map', entries: [['lbl', 'relayuser:s3cret']] }, where };
  const { sink, mta } = await setup(t, { caps: ['STARTTLS', 'AUTH PLAIN LOGIN'], auth: { user: 'relayuser', password: 's3cret' } },
    { host: 'smtp+tls://lbl@mx1.test:PORT', authTable: 'secrets' }, { tables: [secrets] });
  assert.equal((await mta.deliver(mtaEnvelope(1))).result, 'ok');
  assert.equal(sink.transactions[0]!.authUser, 'relayuser');
  const noTable = await setup(t, { caps: ['STARTTLS'] }, { host: 'smtp+tls://lbl@mx1.test:PORT' });
  assert.deepEqual(await noTable.mta.deliver(mtaEnvelope(2)), { result: 'tempfail', enhanced: '4.7.0', detail: 'No auth table for relaying' });
});

test('lmtp://host:port: LHLO and one reply per recipient', async (t) => {
  let n = 0;
  const { sink, mta } = await setup(t, { lmtp: true, dataEnd: () => (n++ === 0 ? '250 2.0.0 ok' : '552 5.2.2 over quota') }, { host: 'lmtp://mx1.test:PORT' });
  const rs = await Promise.all([1, 2].map((i) => mta.deliver(mtaEnvelope(i))));
  assert.deepEqual(rs.map((r) => r.result), ['ok', 'permfail']);
  assert.ok(sink.commands[0]!.some((c) => c.startsWith('LHLO ')));
});
