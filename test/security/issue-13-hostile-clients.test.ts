/**
 * Issue 13, hostile clients against the real daemon: a client that never reads its replies, an
 * endless line, bare LF line ends, junk commands without end, NUL bytes in a body, BDAT past
 * max-message-size, and xtext parameters that decode to line breaks. Each test failed on the
 * code before the fix.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { eventually, startMailHost, type MailHost } from '../harness/mail.js';
import { SmtpTestClient, type SmtpReply } from '../harness/net.js';

let host: MailHost;

before(async () => {
  host = await startMailHost({ extra: 'smtp max-message-size 10K\nsmtp limit max-rcpt 2' });
});
after(async () => {
  await host.stop();
});

async function session(): Promise<SmtpTestClient> {
  const c = await SmtpTestClient.connect(host.port);
  assert.equal((await c.reply()).code, 220);
  assert.equal((await c.cmd('EHLO client.example.test')).code, 250);
  return c;
}

async function transaction(c: SmtpTestClient): Promise<void> {
  assert.equal((await c.cmd('MAIL FROM:<carol@client.example.test>')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<bob@example.test>')).code, 250);
}

/** The daemon's resident memory, in bytes, as the kernel counts it. */
function daemonRss(): number {
  const status = readFileSync(`/proc/${host.daemon.process.pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)![1]) * 1024;
}

/** CPU time the daemon has used so far, in clock ticks (/proc/PID/stat utime + stime). */
function daemonCpu(): number {
  const fields = readFileSync(`/proc/${host.daemon.process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/**
 * Write `total` bytes of `line` in 64 KiB pieces, each only once the last has gone to the
 * kernel, until everything went or nothing moves any more: no piece went and the daemon used
 * no CPU for a second (it stopped reading, or it is done). Resolves with the bytes that went.
 */
async function flood(c: SmtpTestClient, line: string, total: number): Promise<number> {
  const piece = Buffer.from(line.repeat(Math.floor(65536 / line.length)));
  let sent = 0;
  const next = () => {
    while (sent < total) {
      sent += piece.length;
      if (!c.socket.write(piece)) return void c.socket.once('drain', next);
    }
  };
  next();
  let last = [-1, -1];
  for (let still = 0, polls = 0; still < 10 && polls < 1200; polls++) {
    await new Promise((r) => setTimeout(r, 100));
    const now = [sent, daemonCpu()];
    still = now[0] === last[0] && now[1]! - last[1]! <= 1 ? still + 1 : 0;
    last = now;
  }
  return sent;
}

test('a client that never reads its replies cannot make the daemon buffer them: 12 MB of pipelined commands', { timeout: 180_000 }, async () => {
  const warm = await session();
  warm.close();
  const before = daemonRss();
  const c = await session();
  try {
    await transaction(c);
    assert.equal((await c.cmd('RCPT TO:<alice@example.test>')).code, 250);
    // past max-rcpt every RCPT is answered 452 at once: neither an error nor junk, so nothing
    // but back-pressure stops the flood (NOOPs would meet the junk-command cap first)
    c.socket.pause();
    const total = 12 * 1024 * 1024;
    const sent = await flood(c, 'RCPT x\r\n', total);
    const grown = daemonRss() - before;
    // (before the fix: all 12 MB read, and the daemon 270 MB larger; after: about 5 MB and 30 MB,
    // the garbage of the commands answered while the kernel's socket buffers filled)
    const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
    assert.ok(sent < total, `the daemon read all ${mb(sent)}`);
    assert.ok(grown < 64 * 1024 * 1024, `the daemon grew by ${mb(grown)}`);
  } finally {
    c.close();
  }
  // and it still serves
  const next = await session();
  next.close();
});

test('a line without LF is answered 500 5.5.2 and the session closed once 64 KiB have passed (OpenSMTPD smtp_io, SMTP_LINE_MAX)', async () => {
  const c = await session();
  try {
    c.write('NOOP ' + 'x'.repeat(70_000));
    assert.equal((await c.reply()).lines[0], '500 5.5.2 Line too long');
    await c.closedByPeer();
  } finally {
    c.close();
  }
});

test('a bare LF ends no command (RFC 5321 §2.3.8): refused as a bare CR is, where OpenSMTPD (iobuf_getline) takes it as a line end', async () => {
  const c = await session();
  try {
    await transaction(c);
    const cr = await c.cmd('NOOP\rX');
    c.write('DATA\n');
    const lf = await c.reply();
    assert.equal(lf.lines[0], '501 5.5.2 Bare CR or LF in command line (RFC 5321 section 2.3.8)');
    assert.deepEqual(lf.lines, cr.lines);
    // DATA did not start a body: the next line is a command
    assert.equal((await c.cmd('NOOP')).code, 250);
    // a BDAT so ended cannot frame its chunk: the session ends
    c.write('BDAT 5\nhello');
    assert.equal((await c.reply()).lines[0], '421 4.5.4 Malformed BDAT, closing connection');
    await c.closedByPeer();
  } finally {
    c.close();
  }
});

test('junk commands are capped: the 51st NOOP/RSET/HELP/VRFY without a message gets 421 (OpenSMTPD SMTP_KICKTHRESHOLD)', async () => {
  const c = await session();
  try {
    // 50 junk commands: EHLO counts, then 49 more; an accepted message starts the count again
    const junk = ['NOOP', 'RSET', 'HELP', 'VRFY bob'];
    for (let i = 0; i < 48; i++) assert.ok((await c.cmd(junk[i % 4]!)).code < 300);
    await transaction(c);
    assert.equal((await c.cmd('DATA')).code, 354);
    assert.equal((await c.cmd('Subject: progress\r\n\r\nhello\r\n.')).code, 250);
    for (let i = 0; i < 50; i++) assert.ok((await c.cmd(junk[i % 4]!)).code < 300);
    assert.equal((await c.cmd('NOOP')).lines[0], '421 4.7.0 Too many commands without a message, closing connection');
    await c.closedByPeer();
  } finally {
    c.close();
  }
  assert.match(host.daemon.logs(), /smtp disconnected reason=too-many-commands/);
});

test('a NUL byte in a body refuses the message (DATA and BDAT): it reaches neither filters nor mailboxes', async () => {
  const c = await session();
  try {
    await transaction(c);
    assert.equal((await c.cmd('DATA')).code, 354);
    assert.equal((await c.cmd('Subject: nul-data\r\n\r\nbefore\0after\r\n.')).lines[0], '550 5.6.0 NUL byte in message data');
    await transaction(c);
    const body = 'Subject: nul-bdat\r\n\r\nab\0cd\r\n';
    c.write(`BDAT ${body.length} LAST\r\n${body}`);
    assert.equal((await c.reply()).lines[0], '550 5.6.0 NUL byte in message data');
    // the session goes on
    await transaction(c);
    assert.equal((await c.cmd('DATA')).code, 354);
    assert.equal((await c.cmd('Subject: clean\r\n\r\nfine\r\n.')).code, 250);
  } finally {
    c.close();
  }
  await eventually(async () => (await host.maildir('bob')).some((m) => m.includes('Subject: clean')) || undefined, 'the clean message');
  assert.ok(!(await host.maildir('bob')).some((m) => m.includes('nul-')));
});

test('BDAT past max-message-size is refused with the chunk that passes it, not at LAST', async () => {
  const c = await session();
  try {
    await transaction(c);
    c.write(`BDAT 6000\r\n${'a'.repeat(6000)}`);
    assert.equal((await c.reply()).code, 250);
    c.write(`BDAT 6000\r\n${'b'.repeat(6000)}`);
    assert.equal((await c.reply()).lines[0], '552 5.3.4 Message size exceeds fixed maximum message size');
    // the transaction is gone: later chunks are read and refused (RFC 3030 §2)
    c.write('BDAT 4 LAST\r\nlast');
    assert.equal((await c.reply()).code, 503);
    assert.equal((await c.cmd('NOOP')).code, 250);
  } finally {
    c.close();
  }
});

test('AUTH= and ENVID whose xtext decodes to CR, LF or NUL get 501 (RFC 3461 §4, RFC 4954 §5)', async () => {
  const c = await session();
  const replies: SmtpReply[] = [];
  try {
    for (const param of ['AUTH=a+0Db', 'AUTH=a+0Ab', 'AUTH=a+00b', 'ENVID=x+0D+0AX-Injected:+20yes', 'ENVID=x+00']) {
      replies.push(await c.cmd(`MAIL FROM:<carol@client.example.test> ${param}`));
    }
    assert.deepEqual(replies.map((r) => r.code), [501, 501, 501, 501, 501]);
    assert.equal((await c.cmd('MAIL FROM:<carol@client.example.test> AUTH=<> ENVID=ok+2Bfine')).code, 250);
  } finally {
    c.close();
  }
});
