/**
 * Issue 13, a full spool: on a real 20 MB tmpfs (mounted by the test, so it needs root), four
 * clients send 1 MB messages until the disk is full. Every message that got a 250 must be
 * delivered whole after a restart, and none that did not; a full spool must drain without any
 * space being freed first (issue 13 item 12), and take new mail once drained — for the fs and
 * sqlite queues alike. Mail is relayed to a sink in this process that records every body.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { startDaemon, TSMTPD_BIN, type DaemonHandle } from '../harness/daemon.js';
import { eventually, IS_ROOT } from '../harness/mail.js';
import { freePort, SmtpTestClient } from '../harness/net.js';
import { Sink } from '../mta/sink.js';

const CTL = resolve(dirname(TSMTPD_BIN), 'tsmtpctl.js');
const DISK = '20m';
const CLIENTS = 4;
/** Lines of 78 octets plus CRLF: 13000 of them make a message of about 1 MB. */
const LINES = 13_000;
/** 4 × 25 MB offered to a 20 MB disk: it fills whatever the queue's overhead. */
const MAX_PER_CLIENT = 25;
/** A client stops after this many refusals in a row: the disk is full. */
const REFUSALS = 3;
const NOT_ROOT = IS_ROOT ? false : 'mounting a tmpfs needs root';

/** The message a client sends as its n-th: a header naming it, then a body only it has. */
function message(tag: string): string {
  const lines = [`Subject: full disk ${tag}`, `X-Test-Tag: ${tag}`, ''];
  let seed = createHash('sha256').update(tag).digest('hex');
  for (let i = 0; i < LINES; i++) {
    if (i % 1000 === 0) seed = createHash('sha256').update(seed).digest('hex');
    lines.push(`${String(i).padStart(5, '0')} ${seed}`.padEnd(78, '.'));
  }
  return lines.join('\r\n') + '\r\n';
}

interface Sent {
  /** tag → the message as sent, for every message that got a 250. */
  acked: Map<string, string>;
  refused: number;
  replies: string[];
}

/** One client: up to `max` messages back to back, until the disk refuses REFUSALS in a row. */
async function client(port: number, id: number, sent: Sent, max = MAX_PER_CLIENT): Promise<void> {
  const c = await SmtpTestClient.connect(port);
  try {
    await c.reply();
    await c.cmd('EHLO full.client.test');
    let refusedInARow = 0;
    for (let n = 0; n < max && refusedInARow < REFUSALS; n++) {
      const tag = `c${id}-m${n}`;
      const text = message(tag);
      const mail = await c.cmd('MAIL FROM:<filler@client.test>');
      const rcpt = mail.code === 250 ? await c.cmd('RCPT TO:<sink@remote.test>') : mail;
      const data = rcpt.code === 250 ? await c.cmd('DATA') : rcpt;
      const end = data.code === 354 ? await c.cmd(`${text}.`, 60_000) : data;
      sent.replies.push(`${tag} ${end.lines[0]}`);
      if (end.code === 250) {
        sent.acked.set(tag, text);
        refusedInARow = 0;
      } else {
        assert.ok(end.code === 452 || end.code === 451, `${tag}: a full disk is a temporary failure: ${end.lines[0]}`);
        sent.refused++;
        refusedInARow++;
        if (data.code !== 354 && rcpt.code === 250) await c.cmd('RSET');
      }
    }
    await c.cmd('QUIT');
  } finally {
    c.close();
  }
}

async function fill(port: number): Promise<Sent> {
  const sent: Sent = { acked: new Map(), refused: 0, replies: [] };
  await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(port, i, sent)));
  return sent;
}

interface Tally {
  whole: number;
  damaged: string[];
  unacknowledged: string[];
  lost: string[];
}

/** What the sink got against what was acknowledged: each whole, and nothing else. */
function tally(sink: Sink, sent: Sent): Tally {
  const t: Tally = { whole: 0, damaged: [], unacknowledged: [], lost: [] };
  const seen = new Set<string>();
  for (const tx of sink.transactions) {
    const tag = /^X-Test-Tag: (\S+)\r$/m.exec(tx.body)?.[1] ?? `untagged(${tx.body.length} octets)`;
    const original = sent.acked.get(tag);
    if (original === undefined) {
      t.unacknowledged.push(tag);
      continue;
    }
    seen.add(tag);
    // the daemon adds its Received: line in front; the message itself must arrive byte for byte
    const start = tx.body.indexOf('Subject: full disk ');
    if (tx.body.slice(0, start).startsWith('Received: ') && tx.body.slice(start) === original) t.whole++;
    else t.damaged.push(tag);
  }
  t.lost = [...sent.acked.keys()].filter((tag) => !seen.has(tag));
  return t;
}

function checkDelivered(t: Tally, sent: Sent): void {
  assert.deepEqual(t.damaged, [], 'acknowledged messages delivered damaged');
  assert.deepEqual(t.unacknowledged, [], 'messages delivered that never got a 250');
  assert.deepEqual(t.lost, [], `${t.lost.length} of ${sent.acked.size} acknowledged messages lost`);
}

function summary(sent: Sent, sink: Sink): string {
  const t = tally(sink, sent);
  return `acknowledged=${sent.acked.size} refused=${sent.refused} deliveries=${sink.transactions.length} whole=${t.whole} ` +
    `damaged=${t.damaged.length} lost=${t.lost.length} unacknowledged-delivered=${t.unacknowledged.length}`;
}

/** Until every acknowledged message has arrived and the queue is empty, or the time is up (the checks then say what is missing). */
async function drained(spool: string, sink: Sink, sent: Sent): Promise<void> {
  const done = async () => tally(sink, sent).lost.length === 0 && ctl(spool, 'show', 'queue') === '';
  await eventually(async () => (await done()) || undefined, 'an empty queue', 120_000).catch(() => undefined);
}

function ctl(spool: string, ...args: string[]): string {
  const r = spawnSync(process.execPath, [CTL, '--spool', spool, ...args], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, `tsmtpctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A test directory whose spool is a tmpfs of DISK bytes, unmounted and removed after `fn`. */
async function onSmallDisk(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-fulldisk-'));
  const spool = join(dir, 'spool');
  await mkdir(spool);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${DISK},mode=0711`, 'tmpfs', spool]);
  try {
    await fn(dir);
  } finally {
    execFileSync('umount', ['-l', spool]);
    await rm(dir, { recursive: true, force: true });
  }
}

async function daemonOn(dir: string, backend: string, relayPort: number): Promise<{ d: DaemonHandle; port: number }> {
  const port = await freePort();
  const config = [
    `listen on 127.0.0.1 port ${port} hostname mx.example.test`,
    `action "out" relay host smtp://127.0.0.2:${relayPort}`,
    'match from any for domain "remote.test" action "out"',
  ].join('\n');
  return { d: await startDaemon({ config, dir, args: ['-B', `queue=${backend}`] }), port };
}

for (const backend of ['fs', 'sqlite']) {
  test(`a full spool acknowledges only what it stored, and a restart delivers all of it whole (queue=${backend})`, { skip: NOT_ROOT, timeout: 300_000 }, async (t) => {
    await onSmallDisk(async (dir) => {
      const relayPort = await freePort('127.0.0.2');
      const started = await daemonOn(dir, backend, relayPort);
      let d = started.d;
      let sink: Sink | undefined;
      try {
        // nothing leaves while the disk fills: every stored message is still in the spool at the restart
        ctl(d.spool, 'pause', 'mta');
        const sent = await fill(started.port);
        assert.ok(sent.refused > 0, `the disk never filled: ${sent.replies.join('; ')}`);
        assert.ok(sent.acked.size > 0, 'some messages fit');
        await d.kill();
        sink = await Sink.start({ host: '127.0.0.2', port: relayPort });
        d = await d.restart();
        await drained(d.spool, sink, sent);
        t.diagnostic(`queue=${backend} after a restart: ${summary(sent, sink)}`);
        checkDelivered(tally(sink, sent), sent);
        assert.equal(ctl(d.spool, 'show', 'queue'), '', 'the queue drained');
      } finally {
        await d.stop();
        await sink?.close();
      }
    });
  });

  // issue 13 item 12: the next hop is down while the disk fills, so its route is backed off and
  // every envelope waits for its retry; once it is back, `schedule all` drains the full spool in place
  test(`a full spool drains without any space freed first, once the next hop is back and scheduled (queue=${backend})`, { skip: NOT_ROOT, timeout: 300_000 }, async (t) => {
    await onSmallDisk(async (dir) => {
      const relayPort = await freePort('127.0.0.2');
      const { d, port } = await daemonOn(dir, backend, relayPort);
      let sink: Sink | undefined;
      try {
        const sent = await fill(port);
        assert.ok(sent.refused > 0, `the disk never filled: ${sent.replies.join('; ')}`);
        assert.ok(sent.acked.size > 0, 'some messages fit');
        assert.match(d.logs(), /mta-error .*backoff=/, 'the route went into backoff while the disk filled');
        sink = await Sink.start({ host: '127.0.0.2', port: relayPort });
        ctl(d.spool, 'schedule', 'all');
        await drained(d.spool, sink, sent);
        t.diagnostic(`queue=${backend} drained in place: ${summary(sent, sink)}`);
        checkDelivered(tally(sink, sent), sent);
        assert.equal(ctl(d.spool, 'show', 'queue'), '', 'the queue drained');
        // and the space is back: new mail is accepted and delivered
        const before = sent.acked.size;
        await client(port, CLIENTS, sent, 1);
        assert.equal(sent.acked.size, before + 1, `a message after the drain: ${sent.replies.at(-1)}`);
        await drained(d.spool, sink, sent);
        checkDelivered(tally(sink, sent), sent);
      } finally {
        await d.stop();
        await sink?.close();
      }
    });
  });
}
