/**
 * A daemon set up as a small mail host for end-to-end tests: local users from a userinfo table
 * (`nobody`'s uid when the tests run as root, so deliveries really drop privileges), maildirs
 * under the test directory, and helpers to send a message and to find delivered ones.
 */
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type DaemonHandle, type DaemonOptions } from './daemon.js';
import { freePort, SmtpTestClient, type SmtpReply } from './net.js';

export const IS_ROOT = process.getuid?.() === 0;

export interface MailHost {
  daemon: DaemonHandle;
  port: number;
  dir: string;
  /** Messages delivered to a user's maildir (`new/`), as text. */
  maildir(user: string): Promise<string[]>;
  stop(): Promise<void>;
}

/** uid:gid:home for a test user: nobody as root, ourselves otherwise. */
export function userLine(name: string, home: string): string {
  const me = userInfo();
  const ids = IS_ROOT ? '65534:65534' : `${me.uid}:${me.gid}`;
  return `${name} ${ids}:${home}`;
}

export interface MailHostOptions {
  users?: string[];
  /** aliases(5) text; `%DIR%` is replaced. */
  aliases?: string;
  /** Extra config lines; `%DIR%` and `%PORT%` are replaced. */
  extra?: string;
  /** Replaces the default match rules. */
  rules?: string;
  args?: string[];
  /** false: the default listener is left out (the extra lines declare their own, with %PORT%). */
  listen?: boolean;
  /** Runs the daemon through another command (harness/daemon.ts `wrap`). */
  wrap?: DaemonOptions['wrap'];
  /** The daemon's standard input (harness/daemon.ts `stdin`). */
  stdin?: string;
}

export async function startMailHost(o: MailHostOptions = {}): Promise<MailHost> {
  const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-mail-'));
  // deliveries run as nobody when we are root: they must be able to reach their maildirs
  await chmod(dir, 0o711);
  await mkdir(join(dir, 'maildir'), { mode: 0o777 });
  await chmod(join(dir, 'maildir'), 0o777);
  // for files that filters and other unprivileged processes write
  await mkdir(join(dir, 'scratch'), { mode: 0o777 });
  await chmod(join(dir, 'scratch'), 0o777);
  const users = o.users ?? ['alice', 'bob'];
  await writeFile(join(dir, 'users'), users.map((u) => userLine(u, join(dir, 'home', u))).join('\n') + '\n');
  for (const u of users) await mkdir(join(dir, 'home', u), { recursive: true });
  await writeFile(join(dir, 'aliases'), (o.aliases ?? 'postmaster: alice\n').replaceAll('%DIR%', dir));
  const port = await freePort();
  const rules = o.rules ?? 'match from any for domain <domains> action "local"\nmatch from local for local action "local"';
  const config = [
    o.listen === false ? '' : `listen on 127.0.0.1 port ${port} hostname mx.example.test`,
    'table aliases file:%DIR%/aliases',
    'table users file:%DIR%/users',
    'table domains { example.test }',
    'action "local" maildir "%DIR%/maildir/%{user.username:lowercase}" alias <aliases> userbase <users>',
    (o.extra ?? '').replaceAll('%PORT%', String(port)),
    rules,
  ].join('\n');
  const daemon = await startDaemon({ config, dir, ...(o.args ? { args: o.args } : {}), ...(o.wrap ? { wrap: o.wrap } : {}), ...(o.stdin !== undefined ? { stdin: o.stdin } : {}) });
  const host: MailHost = {
    daemon,
    port,
    dir,
    async maildir(user) {
      const box = join(dir, 'maildir', user, 'new');
      const names = await readdir(box).catch(() => [] as string[]);
      return Promise.all(names.sort().map((n) => readFile(join(box, n), 'utf8')));
    },
    // the handle in use: a test may have replaced it with a restarted daemon
    async stop() {
      await host.daemon.stop();
      await host.daemon.cleanup();
    },
  };
  return host;
}

/** Wait until `check` holds, polling; for deliveries that happen after the 250. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One whole transaction; returns every reply in order (the last is the one to the final dot). */
export async function sendMessage(port: number, from: string, to: string[], body: string): Promise<SmtpReply[]> {
  const c = await SmtpTestClient.connect(port);
  const replies: SmtpReply[] = [];
  try {
    replies.push(await c.reply());
    replies.push(await c.cmd('EHLO client.example.test'));
    replies.push(await c.cmd(`MAIL FROM:<${from}>`));
    for (const rcpt of to) replies.push(await c.cmd(`RCPT TO:<${rcpt}>`));
    const data = await c.cmd('DATA');
    replies.push(data);
    if (data.code === 354) {
      const stuffed = body.split('\r\n').map((l) => (l.startsWith('.') ? `.${l}` : l)).join('\r\n');
      replies.push(await c.cmd(`${stuffed}\r\n.`));
    }
    await c.cmd('QUIT');
  } finally {
    c.close();
  }
  return replies;
}
