/**
 * Issue 14: the daemon as processes. As root, nothing that holds a client connection or runs a
 * filter is uid 0; sessions spread over the smtp workers; a role killed with -9 is restarted and
 * mail keeps flowing with nothing acknowledged lost; the parent killed with -9 takes everything
 * down, and the next start delivers what was acknowledged.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import { dirname, join } from 'node:path';
import { eventually, IS_ROOT, sendMessage, startMailHost, type MailHost } from '../harness/mail.js';
import { makeTestPki } from '../harness/certs.js';
import { startDaemon, TSMTPD_BIN } from '../harness/daemon.js';
import { freePort, SmtpTestClient } from '../harness/net.js';
import { alive, CTL, daemonProcesses, holdersOf, rootOf, uidOf } from '../harness/procs.js';

const NOT_ROOT = !IS_ROOT && 'privilege separation needs the tests to run as root';

const REPORTER = [
  '#!/bin/sh',
  'while read -r line; do [ "$line" = "config|ready" ] && break; done',
  'echo "register|report|smtp-in|link-connect"; echo "register|ready"',
  'while read -r line; do :; done',
].join('\n');

/** A chroot holding just a shell and the filter script: what chroot(8) needs to run `/bin/sh -c /filter.sh`. */
async function makeChroot(dir: string): Promise<void> {
  const libs = execFileSync('ldd', ['/bin/sh'], { encoding: 'utf8' }).match(/\/\S+/g) ?? [];
  for (const file of ['/bin/sh', ...libs]) {
    await mkdir(join(dir, dirname(file)), { recursive: true });
    await copyFile(file, join(dir, file));
    await chmod(join(dir, file), 0o755);
  }
  await writeFile(join(dir, 'filter.sh'), REPORTER, { mode: 0o755 });
}

describe('privilege separation (as root)', { skip: NOT_ROOT }, () => {
  let host: MailHost;
  let chroot: string;

  before(async () => {
    const aux = await mkdtemp(join(tmpdir(), 'tsmtpd-procs-'));
    await chmod(aux, 0o755);
    await writeFile(join(aux, 'reporter.sh'), REPORTER, { mode: 0o755 });
    chroot = join(aux, 'jail');
    await makeChroot(chroot);
    host = await startMailHost({
      listen: false,
      extra: [
        'smtp workers 2',
        `filter "plain" proc-exec "${aux}/reporter.sh"`,
        `filter "nobody" proc-exec "${aux}/reporter.sh" user nobody group nogroup`,
        `filter "jailed" proc-exec "/filter.sh" user nobody chroot "${chroot}"`,
        'listen on 127.0.0.1 port %PORT% hostname mx.example.test filter { "plain", "nobody", "jailed" }',
      ].join('\n'),
    });
  });
  after(() => host?.stop());

  it('no process that holds a client connection or runs a filter is root', async () => {
    const procs = daemonProcesses(host.daemon.spool);
    assert.equal(procs.find((p) => p.name === 'parent')?.user, 'root');
    for (const p of procs.filter((q) => q.name !== 'parent')) assert.notEqual(uidOf(p.pid), 0, `${p.name} runs as root`);
    assert.equal(uidOf(procs.find((p) => p.name === 'queue')!.pid), uidOf(procs.find((p) => p.name === 'queue')!.pid));
    assert.notEqual(procs.find((p) => p.name === 'queue')!.user, procs.find((p) => p.name === 'lka')!.user, 'the queue has a user of its own');

    const c = await SmtpTestClient.connect(host.port);
    assert.equal((await c.reply()).code, 220);
    const holders = holdersOf(host.port, c.socket.localPort!);
    assert.equal(holders.length, 1, 'one process holds the session');
    assert.notEqual(uidOf(holders[0]!), 0);
    assert.match(procs.find((p) => p.pid === holders[0])?.name ?? '', /^smtp\.\d$/);
    c.close();

    const pids = Object.fromEntries([...host.daemon.logs().matchAll(/filter-start filter=(\w+) pid=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
    const unprivileged = uidOf(procs.find((p) => p.name === 'lka')!.pid);
    assert.equal(uidOf(pids['plain']!), unprivileged, 'a filter without `user` runs as the unprivileged user');
    assert.equal(uidOf(pids['nobody']!), 65534);
    // chroot(8) execs the shell in the jail: the filter's root is the chroot, its user nobody
    assert.equal(uidOf(pids['jailed']!), 65534);
    assert.equal(rootOf(pids['jailed']!), chroot);
  });

  it('20 concurrent sessions are served by both workers', async () => {
    const clients = await Promise.all(Array.from({ length: 20 }, () => SmtpTestClient.connect(host.port)));
    try {
      for (const c of clients) assert.equal((await c.reply()).code, 220);
      const procs = daemonProcesses(host.daemon.spool);
      const serving = new Set(clients.map((c) => procs.find((p) => p.pid === holdersOf(host.port, c.socket.localPort!)[0])?.name));
      assert.deepEqual([...serving].sort(), ['smtp.1', 'smtp.2']);
    } finally {
      for (const c of clients) c.close();
    }
  });
});

describe('a role killed with -9', () => {
  let host: MailHost;

  before(async () => {
    host = await startMailHost({ extra: 'smtp workers 2' });
  });
  after(() => host?.stop());

  const pidOf = (name: string) => daemonProcesses(host.daemon.spool).find((p) => p.name === name)!.pid;

  it('show stats reports every process\'s event-loop delay', async () => {
    const names = daemonProcesses(host.daemon.spool).map((p) => p.name).sort();
    await eventually(async () => {
      const r = spawnSync(process.execPath, [CTL, '--spool', host.daemon.spool, '--json', 'show', 'stats'], { encoding: 'utf8' });
      const stats = (JSON.parse(r.stdout) as { stats: { key: string; labels: { process?: string } }[] }).stats;
      const reported = stats.filter((s) => s.key === 'process.loop.delay.max').map((s) => s.labels.process).sort();
      return JSON.stringify(reported) === JSON.stringify(names) || undefined;
    }, 'a loop-delay gauge per process', 5000);
  });

  it('a worker: its sessions end, the next session is served within 3 s and mail flows', async () => {
    const c = await SmtpTestClient.connect(host.port);
    assert.equal((await c.reply()).code, 220);
    const holder = holdersOf(host.port, c.socket.localPort!)[0]!;
    const name = daemonProcesses(host.daemon.spool).find((p) => p.pid === holder)!.name;
    process.kill(holder, 'SIGKILL');
    await c.closedByPeer();
    await host.daemon.waitForLog(new RegExp(`process-exit process=${name.replace('.', '\\.')} pid=${holder} signal=SIGKILL`));
    await eventually(async () => {
      const s = await SmtpTestClient.connect(host.port);
      const ok = (await s.reply().catch(() => ({ code: 0 }))).code === 220;
      s.close();
      return ok;
    }, 'a new session', 3000);
    const replies = await sendMessage(host.port, 'a@example.test', ['alice@example.test'], 'Subject: after\r\n\r\nworker restarted\r\n');
    assert.equal(replies.at(-1)!.code, 250);
    await eventually(async () => (await host.maildir('alice')).some((m) => m.includes('worker restarted')), 'the delivery');
    // the new session may have been served by the other worker while this one was still starting
    const restarted = await eventually(async () => daemonProcesses(host.daemon.spool).find((p) => p.name === name), `${name} back`, 10_000);
    assert.equal(restarted.restarts, 1);
  });

  it('the queue: mail still flows and nothing acknowledged is lost', async () => {
    const acked: string[] = [];
    const send = async (i: number) => {
      const replies = await sendMessage(host.port, 'a@example.test', ['bob@example.test'], `Subject: m${i}\r\n\r\nbody-${i}\r\n`).catch(() => []);
      if (replies.at(-1)?.code === 250) acked.push(`body-${i}`);
    };
    const sending = (async () => {
      for (let i = 0; i < 30; i++) await send(i);
    })();
    await new Promise((r) => setTimeout(r, 200));
    process.kill(pidOf('queue'), 'SIGKILL');
    await sending;
    await host.daemon.waitForLog(/process-start process=queue .*\n(?:.*\n)*.*queue queue-load envelopes=/);
    await send(100);
    assert.ok(acked.includes('body-100'), 'mail is accepted after the restart');
    await eventually(async () => {
      const got = (await host.maildir('bob')).join('\n');
      return acked.every((b) => got.includes(b)) ? true : undefined;
    }, 'every acknowledged message', 15_000);
  });
});

describe('the parent killed with -9', () => {
  it('takes every process with it, and the next start delivers what was acknowledged', async () => {
    const host = await startMailHost();
    try {
      const procs = daemonProcesses(host.daemon.spool);
      assert.equal(spawnSync(process.execPath, [CTL, '--spool', host.daemon.spool, 'pause', 'mda']).status, 0);
      const replies = await sendMessage(host.port, 'a@example.test', ['alice@example.test'], 'Subject: kept\r\n\r\nacknowledged before the crash\r\n');
      assert.equal(replies.at(-1)!.code, 250);
      await host.daemon.kill();
      await eventually(async () => procs.every((p) => !alive(p.pid)), 'every child to exit', 5000);
      host.daemon = await host.daemon.restart();
      await eventually(async () => (await host.maildir('alice')).some((m) => m.includes('acknowledged before the crash')), 'the delivery after restart');
    } finally {
      await host.stop();
    }
  });
});

describe('without root', { skip: NOT_ROOT }, () => {
  it('the same processes run as the invoking user, and mail flows', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-nonroot-'));
    await chmod(dir, 0o777);
    const port = await freePort();
    await writeFile(join(dir, 'users'), `alice 65534:65534:${dir}\n`);
    const daemon = await startDaemon({
      dir, uid: 65534,
      config: [
        `listen on 127.0.0.1 port ${port} hostname mx.example.test`,
        'table users file:%DIR%/users',
        'action "local" maildir "%DIR%/maildir/%{user.username}" userbase <users>',
        'match from any for domain "example.test" action "local"',
      ].join('\n'),
    });
    try {
      const procs = daemonProcesses(daemon.spool);
      for (const name of ['parent', 'control', 'lka', 'mta', 'queue', 'smtp.1']) assert.ok(procs.some((p) => p.name === name), `${name}: ${JSON.stringify(procs)}`);
      for (const p of procs) assert.equal(uidOf(p.pid), 65534, p.name);
      const replies = await sendMessage(port, 'a@example.test', ['alice@example.test'], 'Subject: hi\r\n\r\nunprivileged\r\n');
      assert.equal(replies.at(-1)!.code, 250);
      await eventually(async () => (await readdir(join(dir, 'maildir', 'alice', 'new')).catch(() => [])).length === 1, 'the delivery');
    } finally {
      await daemon.stop();
      await daemon.cleanup();
    }
  });
});

describe('private keys', () => {
  it('a key file others may read is refused at start, as OpenSMTPD\'s ssl_load_file refuses it', async () => {
    const pki = await makeTestPki();
    const { cert, key } = await pki.issue('mx.example.test');
    await chmod(key, 0o644);
    const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-keys-'));
    await chmod(dir, 0o755);
    await writeFile(join(dir, 'smtpd.conf'), [
      `pki mxpki cert "${cert}"`, `pki mxpki key "${key}"`,
      `listen on 127.0.0.1 port ${await freePort()} tls pki mxpki`,
      'action "local" maildir "/tmp/none"', 'match from local for local action "local"',
    ].join('\n'));
    const r = spawnSync(process.execPath, [TSMTPD_BIN, '-d', '-f', join(dir, 'smtpd.conf'), '--spool', join(dir, 'spool')], { encoding: 'utf8', timeout: 20_000 });
    // refused before anything starts, with file:line, as `-n` refuses it
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /smtpd\.conf:1: pki mxpki: key .*: insecure permissions 0644: must be at most 0740/);
  });
});

describe('smtp ban across smtp workers', () => {
  it('failures on every worker add up: the lka bans the address and the parent turns it away at connect', async () => {
    const pki = await makeTestPki();
    const mx = await pki.issue('mx.example.test');
    await writeFile(join(pki.dir, 'creds'), `alice ${execFileSync('openssl', ['passwd', '-6', 'right']).toString().trim()}\n`);
    const smtps = await freePort();
    const host = await startMailHost({
      extra: [
        'smtp workers 2',
        'smtp ban auth-failures 4 in 10m for 1h',
        `pki mxpki cert "${mx.cert}"`, `pki mxpki key "${mx.key}"`,
        `table creds file:${join(pki.dir, 'creds')}`,
        `listen on 127.0.0.1 port ${smtps} smtps pki mxpki auth <creds> hostname mx.example.test`,
      ].join('\n'),
    });
    const plain = Buffer.from('\0alice\0wrong').toString('base64');
    const session = async () => {
      const s = tlsConnect({ host: '127.0.0.1', port: smtps, rejectUnauthorized: false });
      await new Promise((r, j) => { s.once('secureConnect', r); s.once('error', j); });
      return SmtpTestClient.over(s as unknown as Socket);
    };
    try {
      // the kernel picks the worker of each connection: open sessions until both workers hold
      // one (bounded), then fail AUTH on four of them that include both
      const open: { c: SmtpTestClient; worker: string }[] = [];
      const workers = () => new Set(open.map((o) => o.worker));
      for (let i = 0; i < 20 && (workers().size < 2 || open.length < 4); i++) {
        const c = await session();
        assert.equal((await c.reply()).code, 220);
        open.push({ c, worker: daemonProcesses(host.daemon.spool).find((p) => p.pid === holdersOf(smtps, c.socket.localPort!)[0])?.name ?? '?' });
      }
      assert.equal(workers().size, 2, 'sessions reached both workers');
      const firstOf = [...workers()].map((w) => open.find((o) => o.worker === w)!);
      const guessers = [...firstOf, ...open.filter((o) => !firstOf.includes(o))].slice(0, 4);
      for (const { c } of guessers) {
        await c.cmd('EHLO guesser.test');
        assert.equal((await c.cmd(`AUTH PLAIN ${plain}`, 5000)).code, 535);
      }
      for (const { c } of open) c.close();
      await host.daemon.waitForLog(/lka banned address=127\.0\.0\.1 reason=auth-failures/);
      await eventually(async () => {
        const c = await session();
        const code = (await c.reply().catch(() => ({ code: 0 }))).code;
        c.close();
        return code === 421 || undefined;
      }, 'the ban at connect', 5000);
    } finally {
      await host.stop();
    }
  });
});

describe('smtp workers accept on the parent\'s sockets (shared-listeners.ts)', () => {
  const greeting = async (port: number) => {
    const c = await SmtpTestClient.connect(port);
    return { c, reply: await c.reply(5000) };
  };
  const ctl = (spool: string, ...args: string[]) => assert.equal(spawnSync(process.execPath, [CTL, '--spool', spool, ...args]).status, 0);

  it('max-sessions holds over both workers: each session is counted by the parent (no leases under a small cap)', async () => {
    const host = await startMailHost({ extra: 'smtp workers 2\nsmtp limit max-sessions 3' });
    try {
      const open = await Promise.all([1, 2, 3].map(() => greeting(host.port)));
      assert.deepEqual(open.map((o) => o.reply.code), [220, 220, 220]);
      const fourth = await greeting(host.port);
      assert.equal(fourth.reply.code, 421);
      assert.match(fourth.reply.text, /Too many sessions/);
      fourth.c.close();
      open[0]!.c.close();
      await eventually(async () => {
        const next = await greeting(host.port);
        next.c.close();
        return next.reply.code === 220 || undefined;
      }, 'a place freed by the session that ended', 5000);
      for (const o of open.slice(1)) o.c.close();
    } finally {
      await host.stop();
    }
  });

  it('pause smtp turns loopback clients away too, though workers admit them from leased places', async () => {
    const host = await startMailHost({ extra: 'smtp workers 2' });
    try {
      // enough sessions for both workers to hold leased places
      for (let i = 0; i < 10; i++) {
        const { c, reply } = await greeting(host.port);
        assert.equal(reply.code, 220);
        c.close();
      }
      ctl(host.daemon.spool, 'pause', 'smtp');
      for (let i = 0; i < 6; i++) {
        const { c, reply } = await greeting(host.port);
        assert.equal(reply.code, 421, 'paused');
        c.close();
      }
      ctl(host.daemon.spool, 'resume', 'smtp');
      const { c, reply } = await greeting(host.port);
      assert.equal(reply.code, 220);
      c.close();
    } finally {
      await host.stop();
    }
  });

  it('with every smtp worker killed, a client waits in the socket\'s backlog and is greeted by a new worker', async () => {
    const host = await startMailHost({ extra: 'smtp workers 2' });
    try {
      const workers = daemonProcesses(host.daemon.spool).filter((p) => /^smtp\./.test(p.name));
      assert.equal(workers.length, 2);
      for (const w of workers) process.kill(w.pid, 'SIGKILL');
      const { c, reply } = await greeting(host.port);
      assert.equal(reply.code, 220, 'not refused, not 421: the socket stays bound and listening in the parent');
      const holder = holdersOf(host.port, c.socket.localPort!)[0]!;
      assert.ok(!workers.some((w) => w.pid === holder), 'a restarted worker serves it');
      c.close();
      const replies = await sendMessage(host.port, 'a@example.test', ['alice@example.test'], 'Subject: backlog\r\n\r\nafter the restart\r\n');
      assert.equal(replies.at(-1)!.code, 250);
    } finally {
      await host.stop();
    }
  });
});
