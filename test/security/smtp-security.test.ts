/**
 * The security properties of the SMTP server, in one file a reviewer can read top to bottom.
 * Every test talks to a real daemon over loopback, configured as an MX for example.test that
 * relays nothing.
 *
 * Policy on bare line endings in DATA (documented in the README): a message containing a bare
 * CR or a bare LF is refused whole with 550 5.5.2 once its real end (<CR><LF>.<CR><LF>) has
 * arrived; the body never ends anywhere else, so no payload can split one message into two.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SmtpTestClient, type SmtpReply } from '../harness/net.js';
import { eventually, sendMessage, startMailHost, type MailHost } from '../harness/mail.js';
import { makeTestPki, type TestPki } from '../harness/certs.js';
import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';

let host: MailHost;
let pki: TestPki;

before(async () => {
  pki = await makeTestPki();
  const mx = await pki.issue('mx.example.test');
  host = await startMailHost({
    listen: false,
    extra: [
      `pki mx.example.test cert "${mx.cert}"`,
      `pki mx.example.test key "${mx.key}"`,
      'listen on 127.0.0.1 port %PORT% tls pki mx.example.test hostname mx.example.test',
    ].join('\n'),
  });
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

/** Replies up to and including the one for a NOOP sent last: what the server answered in between. */
async function repliesUntilNoop(c: SmtpTestClient): Promise<SmtpReply[]> {
  c.write('NOOP\r\n');
  const replies: SmtpReply[] = [];
  for (;;) {
    const r = await c.reply();
    replies.push(r);
    if (r.lines[0] === '250 2.0.0 Ok') return replies;
  }
}

describe('SMTP smuggling (CVE-2023-51764/51765/51766): the body ends only at <CR><LF>.<CR><LF>', () => {
  const smuggled = 'MAIL FROM:<admin@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n';
  const payloads: Record<string, string> = {
    'LF . LF': '\n.\n',
    'CR . CR': '\r.\r',
    'LF . CRLF': '\n.\r\n',
    'CRLF . CR': '\r\n.\r',
    'CR . CRLF': '\r.\r\n',
    'CRLF . LF': '\r\n.\n',
  };
  for (const [name, payload] of Object.entries(payloads)) {
    test(`${name} neither ends the message nor starts a second one`, async () => {
      const c = await session();
      try {
        assert.equal((await c.cmd('MAIL FROM:<carol@client.example.test>')).code, 250);
        assert.equal((await c.cmd('RCPT TO:<alice@example.test>')).code, 250);
        assert.equal((await c.cmd('DATA')).code, 354);
        c.write(`Subject: innocent\r\n\r\nhello${payload}${smuggled}.\r\n`);
        const replies = await repliesUntilNoop(c);
        // exactly one reply to the whole DATA (a refusal), then the NOOP: nothing was executed in between
        assert.equal(replies.length, 2, JSON.stringify(replies));
        assert.equal(replies[0]!.code, 550);
        assert.match(replies[0]!.lines[0]!, /^550 5\.5\.2 /);
      } finally {
        c.close();
      }
    });
  }

  test('a dot-stuffed body is delivered unstuffed, and "." inside a line ends nothing', async () => {
    const replies = await sendMessage(host.port, 'carol@client.example.test', ['bob@example.test'], 'Subject: dots\r\n\r\n.leading dot\r\nmid . dot\r\n..two');
    assert.equal(replies.at(-1)!.code, 250);
    const [msg] = await eventually(async () => (await host.maildir('bob')).find((m) => m.includes('Subject: dots')) && host.maildir('bob'), 'delivery to bob');
    assert.match(msg!, /\n\.leading dot\r?\nmid \. dot\r?\n\.\.two/);
  });
});

describe('STARTTLS (CVE-2011-0411)', () => {
  test('commands pipelined after STARTTLS in the same packet are discarded (CVE-2011-0411)', async () => {
    const c = await SmtpTestClient.connect(host.port);
    try {
      await c.reply();
      await c.cmd('EHLO client.test');
      c.write('STARTTLS\r\nMAIL FROM:<injected@client.test>\r\n');
      assert.match((await c.reply()).lines[0]!, /^220 2\.0\.0/);
      const secure = tlsConnect({ socket: c.socket, servername: 'mx.example.test', ca: readFileSync(pki.ca) });
      await new Promise<void>((res, rej) => { secure.once('secureConnect', res); secure.once('error', rej); });
      let got = '';
      secure.on('data', (d) => (got += d.toString()));
      // if the injected MAIL had survived, the server would answer it now (a 250 or a 503 before EHLO)
      secure.write('NOOP\r\n');
      await eventually(async () => got.includes('\r\n') || undefined, 'NOOP reply');
      assert.equal(got, '250 2.0.0 Ok\r\n');
      secure.destroy();
    } finally {
      c.close();
    }
  });
});

describe('command arguments', () => {
  for (const [name, bad] of [['NUL', '\0'], ['CR', '\r'], ['DEL', '\x7f'], ['ESC', '\x1b']] as const) {
    test(`${name} in an argument is refused with 501`, async () => {
      const c = await session();
      try {
        const r = await c.cmd(`MAIL FROM:<a${bad}b@client.example.test>`);
        assert.equal(r.code, 501);
      } finally {
        c.close();
      }
    });
  }

  test('a command line over 512 octets gets 500 5.5.2 and the session goes on', async () => {
    const c = await session();
    try {
      assert.match((await c.cmd(`NOOP ${'x'.repeat(600)}`)).lines[0]!, /^500 5\.5\.2 /);
      assert.equal((await c.cmd('NOOP')).code, 250);
    } finally {
      c.close();
    }
  });
});

describe('addresses are parsed strictly and open-relay tricks are refused', () => {
  async function rcpt(address: string): Promise<SmtpReply> {
    const c = await session();
    try {
      assert.equal((await c.cmd('MAIL FROM:<carol@client.example.test>')).code, 250);
      return await c.cmd(`RCPT TO:${address}`);
    } finally {
      c.close();
    }
  }

  test('a foreign domain: 550 5.7.1, nothing is relayed', async () => {
    assert.match((await rcpt('<victim@elsewhere.test>')).lines[0]!, /^550 5\.7\.1 /);
  });
  test('percent hack user%other@local: refused as an unknown local user', async () => {
    assert.match((await rcpt('<victim%elsewhere.test@example.test>')).lines[0]!, /^550 5\.1\.1 /);
  });
  test('bang path other!user@local: refused as an unknown local user', async () => {
    assert.match((await rcpt('<elsewhere.test!victim@example.test>')).lines[0]!, /^550 5\.1\.1 /);
  });
  test('source route <@local:victim@elsewhere>: refused', async () => {
    assert.match((await rcpt('<@example.test:victim@elsewhere.test>')).lines[0]!, /^553 5\.1\.3 /);
  });
  test('an address literal is not a local domain', async () => {
    assert.match((await rcpt('<victim@[192.0.2.1]>')).lines[0]!, /^550 5\.7\.1 /);
  });
  test('a trailing dot is a syntax error, not a way around the domain table', async () => {
    assert.equal(Math.floor((await rcpt('<bob@example.test.>')).code / 100), 5);
    assert.notEqual((await rcpt('<bob@example.test.>')).code, 250);
  });
  test('case variants of a local domain are the local domain', async () => {
    assert.equal((await rcpt('<BOB@EXAMPLE.Test>')).code, 250);
  });
  test('quoted local parts parse; one naming no user is refused', async () => {
    assert.match((await rcpt('<"victim@elsewhere.test"@example.test>')).lines[0]!, /^550 5\.1\.1 /);
  });
  test('UTF-8 in an address without SMTPUTF8: refused', async () => {
    assert.match((await rcpt('<bøb@example.test>')).lines[0]!, /^553 5\.6\.7 /);
  });
  test('a path over 256 octets: refused', async () => {
    assert.equal(Math.floor((await rcpt(`<${'a'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}.test>`)).code / 100), 5);
  });
});

describe('nothing from an address reaches a log line unescaped (CVE-2020-7247 class)', () => {
  test('a sender with shell and log metacharacters is logged escaped, on one line', async () => {
    const c = await session();
    try {
      const r = await c.cmd('MAIL FROM:<"x;$(id) key=forged"@client.example.test>');
      assert.equal(r.code, 250);
      assert.equal((await c.cmd('RCPT TO:<nobody-here@example.test>')).code, 550);
    } finally {
      c.close();
    }
    const line = await host.daemon.waitForLog(/rcpt-refused[^\n]*forged[^\n]*/);
    // read the fields back as a log parser would: the forged `key=` must stay inside `from`'s value
    const keys = [...line.matchAll(/ (\w+)=(?:"(?:[^"\\]|\\.)*"|\S+)/g)].map((m) => m[1]);
    assert.deepEqual(keys, ['from', 'to', 'result']);
    assert.match(line, /from="<\\"x;\$\(id\) key=forged\\"@client\.example\.test>"/);
  });
});
