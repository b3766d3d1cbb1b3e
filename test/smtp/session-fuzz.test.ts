/**
 * Issue 13: the session state machine against clients that vanish at any point. fast-check
 * draws scripts of commands (transactions with DATA and BDAT, AUTH, STARTTLS, junk), cuts each
 * at a random byte, writes it in random pieces, and ends the connection with a FIN, an RST or a
 * plain destroy — at once, after some replies, or after a pause — while the lka and the queue
 * answer late. Listeners: plain, filtered, the local socket (AUTH), STARTTLS (a client that says
 * STARTTLS and then sends anything but a TLS handshake, or leaves during it) and SMTPS. Whatever happens, nothing may escape a session (no uncaught error, no
 * `session-error`: the boundary is for bugs, and the fuzz is there to find them), every session
 * ends, every message file the queue handed out is committed or rolled back, and a fresh client
 * is served afterwards.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { startSmtpRole, type SmtpRole } from '../harness/smtp-role.js';
import { SmtpTestClient } from '../harness/net.js';
import { eventually } from '../harness/mail.js';
import { makeTestPki } from '../harness/certs.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
/** Single steps: commands in and out of place, AUTH and its continuations, bad framing. */
const STEPS = [
  'EHLO fuzz.test\r\n', 'HELO fuzz.test\r\n', 'MAIL FROM:<a@fuzz.test>\r\n', 'RCPT TO:<b@fuzz.test>\r\n',
  'DATA\r\n', 'Subject: fuzz\r\n\r\nline\r\n..dot\r\n.\r\n', 'BDAT 5\r\nhello', 'BDAT 4 LAST\r\nbye\n',
  'RSET\r\n', 'NOOP\r\n', 'QUIT\r\n', 'VRFY x\r\n', 'STARTTLS\r\n', 'FROB\r\n', 'NOOP\n', `NOOP ${'x'.repeat(600)}\r\n`,
  `AUTH PLAIN ${b64('\0u\0secret')}\r\n`, `AUTH PLAIN ${b64('\0u\0wrong')}\r\n`, 'AUTH LOGIN\r\n', `${b64('u')}\r\n`,
  'body\0nul\r\n', 'MAIL FROM:<a@fuzz.test> SIZE=99999999999\r\n',
];

/** A whole transaction, so that cuts land in its every step: MAIL, RCPTs, then DATA or BDAT chunks. */
const transaction = fc.record({ rcpts: fc.integer({ min: 1, max: 3 }), body: fc.constantFrom('data', 'bdat', 'bdat-chunks', 'nul') }).map(({ rcpts, body }) => [
  'MAIL FROM:<a@fuzz.test>\r\n',
  ...Array.from({ length: rcpts }, (_, i) => `RCPT TO:<r${i}@fuzz.test>\r\n`),
  ...(body === 'data' ? ['DATA\r\n', 'Subject: fuzz\r\n\r\nline\r\n..dot\r\n.\r\n']
    : body === 'nul' ? ['DATA\r\n', 'Subject: nul\r\n\r\na\0b\r\n.\r\n']
      : body === 'bdat' ? ['BDAT 12 LAST\r\nSubject: b\r\n']
        : ['BDAT 10\r\nSubject: c', 'BDAT 6\r\n\r\nbody', 'BDAT 0 LAST\r\n']),
]);

const script = fc.tuple(
  fc.boolean(),
  fc.array(fc.oneof({ weight: 3, arbitrary: transaction }, { weight: 2, arbitrary: fc.constantFrom(...STEPS).map((s) => [s]) }), { minLength: 1, maxLength: 5 }),
).map(([greet, parts]) => [...(greet ? ['EHLO fuzz.test\r\n'] : []), ...parts.flat()]);

type Ending = 'fin' | 'rst' | 'destroy';
interface Client {
  listener: number;
  script: string[];
  /** Where the bytes are cut, as a fraction of the script. */
  cut: number;
  pieces: number[];
  ending: Ending;
  /** Replies to wait for before ending (0: end at once), or a pause in milliseconds. */
  wait: { replies: number } | { ms: number };
}

const client: fc.Arbitrary<Client> = fc.record({
  listener: fc.nat(4),
  script,
  cut: fc.double({ min: 0, max: 1.2, noNaN: true }),
  pieces: fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 6 }),
  ending: fc.constantFrom<Ending>('fin', 'rst', 'destroy'),
  wait: fc.oneof(fc.record({ replies: fc.nat(10) }), fc.record({ ms: fc.nat(30) })),
});

let role: SmtpRole;
let ca: Buffer;
let delays: number[] = [0];
let turn = 0;

before(async () => {
  const pki = await makeTestPki();
  const mx = await pki.issue('mx.test.local');
  ca = readFileSync(pki.ca);
  role = await startSmtpRole({
    // plain; with a filter (phases and data-lines go through the lka); the local socket with AUTH;
    // STARTTLS; SMTPS
    listeners: [{}, { filter: 'f' }, { kind: 'socket', auth: 'optional' }, { tls: 'starttls', pki: ['mx'] }, { tls: 'smtps', pki: ['mx'] }],
    pkis: [{ name: 'mx', ...mx }],
    delay: () => delays[turn++ % delays.length]!,
    limits: { commandTimeMs: 60_000 },
  });
});
after(async () => {
  await role.stop();
});

function open(c: Client): Socket {
  return c.listener === 2 ? connect({ path: role.socketPath }) : connect({ port: role.ports[c.listener]!, host: '127.0.0.1' });
}

/** One client's life: connect, write the cut script in pieces, wait as told, end as told. */
function play(c: Client): Promise<void> {
  return new Promise((resolve) => {
    const bytes = Buffer.from(c.script.join(''), 'latin1');
    const upTo = Math.min(bytes.length, Math.floor(bytes.length * c.cut));
    const s = open(c);
    let replies = 0;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      // a UNIX socket has no RST
      if (c.ending === 'rst' && c.listener !== 2 && !s.destroyed) s.resetAndDestroy();
      else if (c.ending === 'fin') s.end();
      else s.destroy();
    };
    s.on('error', () => undefined);
    s.on('close', () => resolve());
    s.on('data', (d: Buffer) => {
      replies += d.toString('latin1').split('\r\n').length - 1;
      if ('replies' in c.wait && replies > c.wait.replies) end();
    });
    s.on('connect', () => {
      let at = 0;
      for (const n of c.pieces) {
        if (at >= upTo) break;
        s.write(bytes.subarray(at, Math.min(upTo, at + n)));
        at += n;
      }
      if (at < upTo) s.write(bytes.subarray(at, upTo));
      if ('ms' in c.wait) setTimeout(end, c.wait.ms);
      else if (c.wait.replies === 0) end();
      // a client waiting for more replies than it will get still goes, by the end of the run
      setTimeout(end, 300);
    });
  });
}

async function freshClientIsServed(): Promise<void> {
  for (const [i, port] of role.ports.entries()) {
    const c = i === 2 ? await SmtpTestClient.connectPath(role.socketPath)
      : i === 4 ? SmtpTestClient.over(tlsConnect({ port, host: '127.0.0.1', servername: 'mx.test.local', ca }))
        : await SmtpTestClient.connect(port);
    try {
      assert.equal((await c.reply()).code, 220);
      assert.equal((await c.cmd('EHLO fresh.test')).code, 250);
      assert.equal((await c.cmd('QUIT')).code, 221);
    } finally {
      c.close();
    }
  }
}

test('property: clients that vanish at any byte or step, against late peers, never take the role down', { timeout: 300_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(client, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(15), { minLength: 1, maxLength: 8 }), async (clients, lateness) => {
      delays = lateness;
      // each run is judged on its own, so that fast-check can shrink to the smallest failing one
      role.escaped.length = 0;
      role.logs.length = 0;
      await Promise.all(clients.map(play));
      // every session ends, and every message file is committed or dropped
      await eventually(async () => (await role.stat('smtp.session')) === 0, 'all sessions closed', 5000);
      await eventually(async () => role.openMessages.size === 0 || undefined, `message files left open: ${[...role.openMessages]}`, 5000);
      assert.deepEqual(role.escaped.map(String), []);
      assert.deepEqual(role.logs.filter((l) => l.includes('session-error')), []);
    }),
    { numRuns: 100 },
  );
  await freshClientIsServed();
});

test('a client that hangs up during the TLS handshake (SMTPS, or after STARTTLS) frees its session at once', async () => {
  for (const [port, say] of [[role.ports[4]!, ''], [role.ports[3]!, 'EHLO tls.test\r\nSTARTTLS\r\n']] as const) {
    const s = connect({ port, host: '127.0.0.1' });
    s.on('error', () => undefined);
    await new Promise((r) => s.once('connect', r));
    s.write(say);
    if (say) await new Promise((r) => s.on('data', (d: Buffer) => d.includes('220 2.0.0') && r(undefined)));
    await eventually(async () => (await role.stat('smtp.session')) === 1 || undefined, 'the session to open');
    s.end();
    // before the fix it was held until the idle timeout (5 minutes by default)
    await eventually(async () => (await role.stat('smtp.session')) === 0 || undefined, 'the session to end', 5000);
  }
});
