#!/usr/bin/env node
/**
 * sendmail(8) for tsmtpd: reads a message on stdin and submits it through the daemon's enqueue
 * socket. Options as OpenSMTPD's enqueue takes them: `-f sender`, `-F name`, `-t` (recipients
 * from To/Cc/Bcc), `-i`/`-oi` (a lone dot does not end the message), and the usual sendmail
 * options that have no meaning here (`-o*`, `-B`, `-v`...) are accepted and ignored.
 */
import { userInfo } from 'node:os';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { defaultSpool } from '../daemon/spool.js';
import { ENQUEUE_SOCKET } from '../smtp/listener.js';
import { recipientsFromHeaders, withoutBcc } from '../sendmail/recipients.js';
import { submit, SubmitError } from '../sendmail/submit.js';

/** sysexits(3), as sendmail reports them. */
const EX_USAGE = 64;
const EX_TEMPFAIL = 75;
const EX_UNAVAILABLE = 69;

interface Options {
  sender?: string;
  fromName?: string;
  fromHeaders: boolean;
  ignoreDots: boolean;
  spool: string;
  recipients: string[];
}

const HELP = `usage: tsmtpd-sendmail [-it] [-f sender] [-F name] [--spool dir] [--] [recipient ...] < message
  -f sender, -r sender  the envelope sender (default: the invoking user)
  -F name               the full name in a From: header added when the message has none
  -i, -oi               a line with a single dot does not end the message
  -t                    recipients from the To:, Cc: and Bcc: headers (Bcc: is removed)
  --spool dir           the daemon's spool (default: TSMTPD_SPOOL, else /var/spool/tsmtpd as root,
                        ./spool otherwise)
  --help                print this help and exit
  --                    every argument after it is a recipient
Accepted for sendmail compatibility and without effect: -B type, -b*, -G, -m, -N dsn, -o*, -R ret,
-S, -U, -V envid, -v, -x.
Exit status (sysexits): 0 submitted, 64 usage error, 69 refused, 75 try again later.
`;

function parse(argv: string[]): Options {
  const end = argv.indexOf('--');
  if (argv.slice(0, end < 0 ? undefined : end).includes('--help')) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const o: Options = { fromHeaders: false, ignoreDots: false, spool: process.env.TSMTPD_SPOOL ?? defaultSpool(), recipients: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (flag: string) => (a.length > flag.length ? a.slice(flag.length) : argv[++i]);
    if (a === '--') { o.recipients.push(...argv.slice(i + 1)); break; }
    if (a === '--spool') o.spool = argv[++i] ?? o.spool;
    else if (a.startsWith('-f') || a.startsWith('-r')) o.sender = value(a.slice(0, 2));
    else if (a.startsWith('-F')) o.fromName = value('-F');
    else if (a === '-t') o.fromHeaders = true;
    else if (a === '-i' || a === '-oi') o.ignoreDots = true;
    else if (a.startsWith('-o') || a.startsWith('-B') || a.startsWith('-b') || a.startsWith('-N') || a.startsWith('-R') || a.startsWith('-V')) {
      if (['-o', '-B', '-N', '-R', '-V'].includes(a)) i++;
    } else if (a === '-v' || a === '-U' || a === '-G' || a === '-m' || a === '-x' || a === '-S') continue;
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

/** With -t the headers must be read first, to find the recipients and drop Bcc. */
async function* withHeadersFirst(lines: AsyncGenerator<string>, o: Options, rcpts: string[]): AsyncGenerator<string> {
  const head: string[] = [];
  let next = await lines.next();
  while (!next.done && next.value !== '') {
    head.push(next.value);
    next = await lines.next();
  }
  if (o.fromHeaders) rcpts.push(...recipientsFromHeaders(head.join('\n')));
  const headers = o.fromHeaders ? withoutBcc(head.join('\n')).split('\n').filter(Boolean) : head;
  if (!headers.some((h) => /^from:/i.test(h)) && o.sender) {
    yield o.fromName ? `From: "${o.fromName.replace(/["\\\r\n]/g, '')}" <${o.sender}>` : `From: <${o.sender}>`;
  }
  yield* headers;
  if (!next.done) yield '';
  for (next = await lines.next(); !next.done; next = await lines.next()) yield next.value;
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const sender = o.sender ?? userInfo().username;
  const recipients = [...o.recipients];
  const body = withHeadersFirst(stdinLines(o.ignoreDots), o, recipients);
  // the header section must be read before the recipients are known, so prime the generator
  const first = await body.next();
  if (recipients.length === 0) fail(EX_USAGE, 'no recipients');
  async function* all(): AsyncGenerator<string> {
    if (!first.done) yield first.value;
    yield* body;
  }
  try {
    await submit({ socketPath: join(o.spool, ENQUEUE_SOCKET), sender, recipients, lines: all() });
  } catch (err) {
    const message = (err as Error).message;
    if (err instanceof SubmitError && /: 5\d\d/.test(message)) fail(EX_UNAVAILABLE, message);
    fail(EX_TEMPFAIL, message);
  }
}

await main();
