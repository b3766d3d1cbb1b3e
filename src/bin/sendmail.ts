#!/usr/bin/env node
/**
 * sendmail(8) for tsmtpd: reads a message on stdin and submits it through the daemon's enqueue
 * socket. Options as OpenSMTPD's enqueue takes them: `-f sender`, `-F name`, `-t` (recipients
 * from To/Cc/Bcc), `-i`/`-oi` (a lone dot does not end the message), `-S`, and the usual
 * sendmail options that have no meaning here (`-o*`, `-B`, `-v`...) are accepted and ignored.
 * Without -f the sender is the message's From:, else the invoking user at the server's name; bare
 * names are qualified with that name (enqueue.c build_from, qualify_addr). With the daemon down
 * the message goes to the offline queue, which the daemon empties when it starts.
 */
import type { Socket } from 'node:net';
import { userInfo } from 'node:os';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { findServerName } from '../daemon/server-name.js';
import { clientSpool } from '../daemon/spool.js';
import { ENQUEUE_SOCKET } from '../smtp/listener.js';
import { OfflineArgumentError, storeOffline } from '../sendmail/offline.js';
import { qualify, recipientsFromHeaders, senderFromHeaders, withoutBcc } from '../sendmail/recipients.js';
import { connectDaemon, DaemonDownError, submit, SubmitError } from '../sendmail/submit.js';

/** sysexits(3), as sendmail reports them. */
const EX_USAGE = 64;
const EX_UNAVAILABLE = 69;
const EX_SOFTWARE = 70;
const EX_TEMPFAIL = 75;

interface Options {
  sender?: string;
  fromName?: string;
  fromHeaders: boolean;
  ignoreDots: boolean;
  /** -S: the daemon replays an offline message; it never goes back offline. */
  replay: boolean;
  spool: string;
  recipients: string[];
}

const HELP = `usage: tsmtpd-sendmail [-it] [-f sender] [-F name] [--spool dir] [--] [recipient ...] < message
  -f sender, -r sender  the envelope sender (default: the From: header's address, else the invoking
                        user; a name without @ is qualified with the server's name)
  -F name               the full name in a From: header added when the message has none
  -i, -oi               a line with a single dot does not end the message
  -t                    recipients from the To:, Cc: and Bcc: headers (Bcc: is removed)
  -S                    (the daemon, replaying the offline queue) no offline fallback
  --spool dir           the daemon's spool (default: TSMTPD_SPOOL, else /var/spool/tsmtpd when it
                        exists, else ./spool)
  --help                print this help and exit
  --                    every argument after it is a recipient
Accepted for sendmail compatibility and without effect: -B type, -b*, -G, -m, -N dsn, -o*, -R ret,
-S, -U, -V envid, -v, -x.
Recipients without @ are qualified with the server's name. With the daemon down the message is
kept in SPOOL/offline and sent when the daemon starts (exit 0).
Exit status (sysexits): 0 submitted or kept, 64 usage error, 69 refused, 70 an argument with |, 75 try again later.
`;

function parse(argv: string[]): Options {
  const end = argv.indexOf('--');
  if (argv.slice(0, end < 0 ? undefined : end).includes('--help')) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const o: Options = { fromHeaders: false, ignoreDots: false, replay: false, spool: clientSpool(), recipients: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (flag: string) => (a.length > flag.length ? a.slice(flag.length) : argv[++i]);
    if (a === '--') { o.recipients.push(...argv.slice(i + 1)); break; }
    if (a === '--spool') o.spool = argv[++i] ?? o.spool;
    else if (a.startsWith('-f') || a.startsWith('-r')) o.sender = value(a.slice(0, 2));
    else if (a.startsWith('-F')) o.fromName = value('-F');
    else if (a === '-t') o.fromHeaders = true;
    else if (a === '-i' || a === '-oi') o.ignoreDots = true;
    else if (a === '-S') o.replay = true;
    else if (a.startsWith('-o') || a.startsWith('-B') || a.startsWith('-b') || a.startsWith('-N') || a.startsWith('-R') || a.startsWith('-V')) {
      if (['-o', '-B', '-N', '-R', '-V'].includes(a)) i++;
    } else if (a === '-v' || a === '-U' || a === '-G' || a === '-m' || a === '-x') continue;
    else if (a.startsWith('-')) fail(EX_USAGE, `unknown option ${a}`);
    else o.recipients.push(a);
  }
  return o;
}

function fail(code: number, message: string): never {
  process.stderr.write(`sendmail: ${message}\n`);
  process.exit(code);
}

/** Lines of stdin; without -i a lone "." ends the message, as traditional sendmail does. */
async function* stdinLines(ignoreDots: boolean): AsyncGenerator<string> {
  for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    if (!ignoreDots && line === '.') return;
    yield line;
  }
}

/** The header section, read before anything is sent: it may name the sender and the recipients. */
async function readHead(lines: AsyncGenerator<string>): Promise<{ head: string[]; separated: boolean }> {
  const head: string[] = [];
  for (let next = await lines.next(); !next.done; next = await lines.next()) {
    if (next.value === '') return { head, separated: true };
    head.push(next.value);
  }
  return { head, separated: false };
}

/** -f's `<addr>` form, as build_from takes it; `-f ''` and `-f '<>'` are the null sender. */
function fakeFrom(value: string): string {
  if (!value.startsWith('<')) return value;
  if (!value.endsWith('>')) fail(EX_USAGE, 'leading < but no trailing >');
  return value.slice(1, -1);
}

/** getpwuid(getuid()) as enqueue.c falls back to it; "anonymous" when the uid has no name. */
function invokingUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'anonymous';
  }
}

/** What goes to the daemon: the headers without Bcc (with -t), a From: when there was none, then the rest. */
async function* outgoing(o: Options, sender: string, head: string[], separated: boolean, rest: AsyncGenerator<string>): AsyncGenerator<string> {
  const headers = o.fromHeaders ? withoutBcc(head.join('\n')).split('\n').filter(Boolean) : head;
  if (!headers.some((h) => /^from:/i.test(h)) && sender) {
    yield o.fromName ? `From: "${o.fromName.replace(/["\\\r\n]/g, '')}" <${sender}>` : `From: <${sender}>`;
  }
  yield* headers;
  if (separated) yield '';
  yield* rest;
}

/** The offline file keeps the message as it came, so a replayed -t still finds its Bcc recipients. */
async function* asRead(head: string[], separated: boolean, rest: AsyncGenerator<string>): AsyncGenerator<string> {
  yield* head;
  if (separated) yield '';
  yield* rest;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const o = parse(argv);
  const host = findServerName();
  const lines = stdinLines(o.ignoreDots);
  const { head, separated } = await readHead(lines);
  const headText = head.join('\n');
  const sender = o.sender !== undefined ? qualify(fakeFrom(o.sender), host) : senderFromHeaders(headText, host) ?? qualify(invokingUser(), host);
  // rcpt_add: an argument may hold several recipients separated by commas
  const recipients = o.recipients.flatMap((r) => r.split(',')).map((r) => r.trim()).filter(Boolean).map((r) => qualify(r, host));
  if (o.fromHeaders) recipients.push(...recipientsFromHeaders(headText, host).filter((r) => !recipients.includes(r)));
  if (recipients.length === 0) fail(EX_USAGE, 'no recipients');

  let socket: Socket;
  try {
    socket = await connectDaemon(join(o.spool, ENQUEUE_SOCKET));
  } catch (err) {
    if (!(err instanceof DaemonDownError) || o.replay) fail(EX_TEMPFAIL, (err as Error).message);
    try {
      await storeOffline(o.spool, argv, asRead(head, separated, lines));
    } catch (e) {
      if (e instanceof OfflineArgumentError) fail(EX_SOFTWARE, e.message);
      fail(EX_UNAVAILABLE, `the daemon is not running and the message cannot be kept: ${(e as Error).message}`);
    }
    return;
  }
  try {
    await submit({ socket, sender, recipients, lines: outgoing(o, sender, head, separated, lines) });
  } catch (err) {
    const message = (err as Error).message;
    if (err instanceof SubmitError && /: 5\d\d/.test(message)) fail(EX_UNAVAILABLE, message);
    fail(EX_TEMPFAIL, message);
  }
}

await main();
