/**
 * Issue 19, the shared queue through the whole daemon: two nodes on one machine (two spools, two
 * ports) share one PostgreSQL database and relay to sinks in this process. Mail one node takes
 * is delivered by the other when the first cannot; a node killed with -9 loses nothing once its
 * leases run out; with both running nothing is delivered twice; a database that goes away for a
 * moment costs clients a 451, never a message. (OpenSMTPD has no shared queue: the single-node
 * counterparts are scheduler_ram's schedule/remove/suspend and queue_proc's commit-before-ack.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createConnection, createServer, type Socket } from 'node:net';
import { dirname, resolve } from 'node:path';
import { TSMTPD_BIN } from '../harness/daemon.js';
import { eventually, sendMessage, startMailHost, type MailHost } from '../harness/mail.js';
import { pgDatabase, pgQuery, pgSkip } from '../harness/pg-db.js';
import { Sink, type SinkOptions } from '../mta/sink.js';

const skip = await pgSkip();
const CTL = resolve(dirname(TSMTPD_BIN), 'tsmtpctl.js');

function ctl(host: MailHost, ...args: string[]): string {
  const r = spawnSync(process.execPath, [CTL, '--spool', host.daemon.spool, ...args], { encoding: 'utf8', timeout: 15_000 });
  assert.equal(r.status, 0, `tsmtpctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function node(t: { after(fn: () => Promise<void>): void }, name: string, url: string, relayPort: number, relayHost = '127.0.0.2', lease = 60,
  rules = 'match from any for domain "remote.test" action "out"'): Promise<MailHost> {
  const host = await startMailHost({
    args: ['-B', 'queue=postgres'],
    extra: [
      `queue url "${url}"`, `queue node "${name}"`, `queue lease ${lease}s`,
      `action "out" relay host smtp://${relayHost}:${relayPort}`,
    ].join('\n'),
    rules,
  });
  t.after(() => host.stop());
  return host;
}

async function sink(t: { after(fn: () => Promise<void>): void }, opts: Partial<SinkOptions> = {}): Promise<Sink> {
  const s = await Sink.start({ host: '127.0.0.2', caps: ['PIPELINING'], ...opts });
  t.after(() => s.close());
  return s;
}

/** Subject → times the sink received it. */
function received(s: Sink): Map<string, number> {
  const n = new Map<string, number>();
  for (const tx of s.transactions) {
    const m = /^Subject: (\S+)/m.exec(tx.body);
    if (m) n.set(m[1]!, (n.get(m[1]!) ?? 0) + 1);
  }
  return n;
}

async function send(host: MailHost, subject: string): Promise<number> {
  const replies = await sendMessage(host.port, 'alice@client.test', [`${subject}@remote.test`], `Subject: ${subject}\r\n\r\nhello\r\n`);
  return replies.at(-1)!.code;
}

const allDelivered = (s: Sink, subjects: string[], timeoutMs = 60_000) =>
  eventually(async () => subjects.every((x) => received(s).has(x)) || undefined, `${subjects.length} messages delivered`, timeoutMs);

test('cluster: mail accepted by A while its mta is paused is delivered by B; show queue on either node shows all of it', { skip, timeout: 120_000 }, async (t) => {
  const url = await pgDatabase(t);
  const out = await sink(t);
  const a = await node(t, 'A', url, out.port);
  const b = await node(t, 'B', url, out.port);
  ctl(a, 'pause', 'mta');
  ctl(b, 'pause', 'mta');
  const subjects = ['a1', 'a2', 'a3'];
  for (const s of subjects) assert.equal(await send(a, s), 250);
  assert.equal(await send(b, 'b1'), 250);
  // the whole queue, from either node
  for (const h of [a, b]) assert.equal(ctl(h, 'show', 'queue').trim().split('\n').length, 4);
  ctl(b, 'resume', 'mta');
  await allDelivered(out, [...subjects, 'b1']);
  assert.deepEqual([...received(out).values()], [1, 1, 1, 1]);
  await eventually(async () => (await pgQuery(url, 'SELECT 1 FROM tsmtpd_messages')).length === 0 || undefined, 'the queue empty');
  assert.match(ctl(a, 'show', 'status'), /MTA paused/i);
});

test('cluster: pause, resume and remove envelope given on one node act on mail the other took', { skip, timeout: 120_000 }, async (t) => {
  const url = await pgDatabase(t);
  const out = await sink(t);
  const a = await node(t, 'A', url, out.port);
  const b = await node(t, 'B', url, out.port);
  ctl(a, 'pause', 'mta');
  ctl(b, 'pause', 'mta');
  assert.equal(await send(a, 'keep'), 250);
  assert.equal(await send(a, 'drop'), 250);
  const lines = ctl(b, 'show', 'queue').trim().split('\n');
  const evpid = (rcpt: string) => lines.find((l) => l.includes(`|${rcpt}@remote.test|`))!.split('|')[0]!;
  assert.match(ctl(b, 'pause', 'envelope', evpid('keep')), /^1 envelope paused$/m);
  assert.match(ctl(b, 'remove', evpid('drop')), /^1 envelope removed$/m);
  await eventually(async () => ctl(a, 'show', 'queue').trim().split('\n').length === 1 || undefined, 'the removed envelope gone for A too');
  assert.match(ctl(a, 'show', 'queue'), /\|suspend\|/);
  ctl(a, 'resume', 'mta');
  ctl(b, 'resume', 'mta');
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(out.transactions.length, 0, 'a paused envelope is not delivered by either node');
  assert.match(ctl(a, 'resume', 'envelope', evpid('keep')), /^1 envelope resumed$/m);
  await allDelivered(out, ['keep']);
  assert.equal(received(out).has('drop'), false);
});

test('cluster: A killed with -9 right after acknowledging 50 messages: B delivers all 50 once A\'s leases run out', { skip, timeout: 180_000 }, async (t) => {
  const url = await pgDatabase(t);
  const good = await sink(t);
  // A's deliveries hang at EHLO, so A holds the leases of all it took when it dies
  const stalled = await Sink.start({ host: '127.0.0.3', silentOn: 'EHLO' });
  t.after(() => stalled.close());
  const a = await node(t, 'A', url, stalled.port, '127.0.0.3', 4);
  const b = await node(t, 'B', url, good.port, '127.0.0.2', 4);
  ctl(b, 'pause', 'mta');
  const subjects = Array.from({ length: 50 }, (_, i) => `k${i}`);
  await Promise.all(Array.from({ length: 5 }, async (_, w) => {
    for (let i = w; i < 50; i += 5) assert.equal(await send(a, subjects[i]!), 250);
  }));
  // B sees which node holds what: A, for every envelope it took
  await eventually(async () => /\|A$/m.test(ctl(b, 'show', 'queue')) || undefined, 'A holding leases');
  await a.daemon.kill();
  ctl(b, 'resume', 'mta');
  await allDelivered(good, subjects, 120_000);
  assert.equal(received(good).size, 50);
  assert.match(b.daemon.logs(), /scheduler lease .*from=A reason=lease-expired/);
});

test('cluster: a node renews its leases while its deliveries run: the other node does not take them over', { skip, timeout: 120_000 }, async (t) => {
  const url = await pgDatabase(t);
  const good = await sink(t);
  const stalled = await Sink.start({ host: '127.0.0.3', silentOn: 'EHLO' });
  t.after(() => stalled.close());
  // a 2 s lease; A's deliveries hang far longer, B is running and could deliver them
  const a = await node(t, 'A', url, stalled.port, '127.0.0.3', 2);
  const b = await node(t, 'B', url, good.port, '127.0.0.2', 2);
  ctl(b, 'pause', 'mta');
  for (const s of ['r1', 'r2']) assert.equal(await send(a, s), 250);
  await eventually(async () => ctl(b, 'show', 'queue').trim().split('\n').every((l) => l.endsWith('|A')) || undefined, 'A holding both');
  ctl(b, 'resume', 'mta');
  // three lease lengths: without renewal B would have taken both over after the first
  await new Promise((r) => setTimeout(r, 6000));
  assert.equal(good.transactions.length, 0, 'B delivered nothing A holds');
  assert.deepEqual(ctl(b, 'show', 'queue').trim().split('\n').map((l) => l.split('|').at(-1)), ['A', 'A']);
  // A goes: now B takes them
  await a.daemon.kill();
  await allDelivered(good, ['r1', 'r2']);
});

test('cluster: with both nodes running and taking mail, no message is delivered twice', { skip, timeout: 180_000 }, async (t) => {
  const url = await pgDatabase(t);
  const out = await sink(t);
  const a = await node(t, 'A', url, out.port);
  const b = await node(t, 'B', url, out.port);
  const subjects = Array.from({ length: 60 }, (_, i) => `d${i}`);
  await Promise.all(Array.from({ length: 6 }, async (_, w) => {
    for (let i = w; i < 60; i += 6) assert.equal(await send(i % 2 ? a : b, subjects[i]!), 250);
  }));
  await allDelivered(out, subjects, 120_000);
  // give a second delivery the time to show up, if there were one
  await new Promise((r) => setTimeout(r, 2000));
  const twice = [...received(out)].filter(([, n]) => n > 1);
  assert.deepEqual(twice, []);
  assert.equal(received(out).size, 60);
});

test('cluster: each bounce is generated once, by one node, with both nodes running', { skip, timeout: 120_000 }, async (t) => {
  const url = await pgDatabase(t);
  // the next hop refuses fail*@ for good; the reports go back to client.test through it too
  const out = await sink(t, { rcpt: (addr) => (addr.startsWith('fail') ? '550 5.1.1 No such user' : undefined) });
  const rules = 'match from any for domain "remote.test" action "out"\nmatch from any for domain "client.test" action "out"';
  const a = await node(t, 'A', url, out.port, '127.0.0.2', 60, rules);
  const b = await node(t, 'B', url, out.port, '127.0.0.2', 60, rules);
  for (let i = 0; i < 6; i++) assert.equal(await send(i % 2 ? a : b, `fail${i}`), 250);
  const reports = () => out.transactions.filter((tx) => /^MAIL FROM:<>/i.test(tx.mail) && tx.rcpts.some((r) => r.includes('<alice@client.test>')));
  await eventually(async () => reports().length >= 6 || undefined, 'six reports', 60_000);
  await eventually(async () => (await pgQuery(url, 'SELECT 1 FROM tsmtpd_envelopes')).length === 0 || undefined, 'the queue empty', 30_000);
  assert.equal(reports().length, 6, 'one report per failed message, whichever node failed it');
});

/** A TCP proxy to PostgreSQL that the test can cut (every connection dropped, new ones refused) and restore. */
async function cuttableProxy(t: { after(fn: () => Promise<void>): void }, target: number) {
  const sockets = new Set<Socket>();
  let cut = false;
  const server = createServer((client) => {
    if (cut) return void client.destroy();
    const upstream = createConnection({ host: '127.0.0.1', port: target });
    sockets.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop).pipe(upstream);
    upstream.on('error', drop).on('close', drop).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  }));
  return {
    port: (server.address() as { port: number }).port,
    cut() {
      cut = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      cut = false;
    },
  };
}

test('cluster: the database cut for a moment: clients get 451 and nothing acknowledged is lost', { skip, timeout: 180_000 }, async (t) => {
  const url = await pgDatabase(t);
  const direct = new URL(url);
  const proxy = await cuttableProxy(t, Number(direct.port || 5432));
  const viaProxy = new URL(url);
  viaProxy.port = String(proxy.port);
  const out = await sink(t);
  const a = await node(t, 'A', viaProxy.toString(), out.port);
  ctl(a, 'pause', 'mta');
  const before = ['c1', 'c2', 'c3'];
  for (const s of before) assert.equal(await send(a, s), 250);
  ctl(a, 'resume', 'mta');
  proxy.cut();
  const replies = await sendMessage(a.port, 'alice@client.test', ['cut@remote.test'], 'Subject: cut\r\n\r\nx\r\n');
  // the message is made at MAIL FROM (smtp_tx_create_message): RCPT, which needs it, or the commit gets 451
  const shown = replies.map((r) => r.lines.join(' / ')).join(' | ');
  assert.ok(replies.some((r) => r.code === 451), `while the database is away: ${shown}`);
  assert.notEqual(replies.at(-1)!.code, 250, shown);
  proxy.restore();
  assert.equal(await send(a, 'c4'), 250, a.daemon.logs().split('\n').filter((l) => /warn|error/.test(l)).join('\n'));
  await allDelivered(out, [...before, 'c4']);
  assert.equal(received(out).has('cut'), false, 'refused mail is not delivered');
  assert.match(a.daemon.logs(), /queue-database|commit-failed/);
  assert.doesNotMatch(a.daemon.logs(), / fatal /, 'no process ended over it');
});
