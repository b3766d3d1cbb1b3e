/**
 * Issue 13, item 1: a filter that is configured but not running fails closed. A filter process
 * is killed; while it is dead and while its restart is in its handshake (held by the test), the
 * phases it registered are answered 451, never passed; once it is back it decides again.
 * OpenSMTPD exits instead (smtpd.c parent_sig_handler, "lost processor"); tsmtpd restarts it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually, startMailHost, type MailHost } from '../harness/mail.js';
import { SmtpTestClient } from '../harness/net.js';

const GATE = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/filters/gate.py');

/** One filter's state directory: its pid, and the hold/release files that gate its restart. */
class Gate {
  private constructor(readonly dir: string, readonly name: string) {}

  static async make(name: string): Promise<Gate> {
    const dir = await mkdtemp(join(tmpdir(), `tsmtpd-gate-${name}-`));
    // the filter runs as the daemon's unprivileged user and keeps its state here
    await chmod(dir, 0o777);
    return new Gate(dir, name);
  }

  /** Kill the running filter, its restart held back (`hold`) or failing once (`crash`); resolves once the daemon saw it die. */
  async kill(host: MailHost, restart: 'hold' | 'crash'): Promise<void> {
    await writeFile(join(this.dir, restart), '');
    process.kill(Number(await readFile(join(this.dir, 'pid'), 'utf8')), 'SIGKILL');
    await host.daemon.waitForLog(new RegExp(`filter-exit filter=${this.name}`));
  }

  starts(host: MailHost): number {
    return (host.daemon.logs().match(new RegExp(`filter-start filter=${this.name} `, 'g')) ?? []).length;
  }

  async restartHeld(host: MailHost): Promise<void> {
    await host.daemon.waitForLog(new RegExp(`filter-stderr filter=${this.name} line=held`));
  }

  async release(host: MailHost): Promise<void> {
    const before = this.starts(host);
    await writeFile(join(this.dir, 'release'), '');
    await eventually(async () => this.starts(host) > before, `${this.name} restarted`);
  }
}

async function ehlo(host: MailHost, server: string): Promise<SmtpTestClient> {
  const c = await SmtpTestClient.connect(host.port, server);
  assert.equal((await c.reply()).code, 220);
  assert.equal((await c.cmd('EHLO client.example.test')).code, 250);
  return c;
}

/** A whole message from friend@good.test; the reply to its final dot (or to what refused it first). */
async function send(host: MailHost, server: string, to: string, subject: string): Promise<number> {
  const c = await ehlo(host, server);
  try {
    for (const line of ['MAIL FROM:<friend@good.test>', `RCPT TO:<${to}>`, 'DATA']) {
      const r = await c.cmd(line);
      if (r.code >= 400) return r.code;
    }
    return (await c.cmd(`Subject: ${subject}\r\n\r\nhello\r\n.`)).code;
  } finally {
    c.close();
  }
}

describe('issue 13: a filter that is not running fails closed', () => {
  let host: MailHost;
  let sender: Gate;
  let signer: Gate;

  before(async () => {
    sender = await Gate.make('sender');
    signer = await Gate.make('signer');
    host = await startMailHost({
      listen: false,
      extra: [
        `filter "sender" proc-exec "/usr/bin/python3 ${GATE} ${sender.dir} mail-from"`,
        `filter "signer" proc-exec "/usr/bin/python3 ${GATE} ${signer.dir} data-line"`,
        'listen on 127.0.0.1 port %PORT% hostname mx.example.test filter "sender"',
        'listen on 127.0.0.2 port %PORT% hostname mx.example.test filter "signer"',
      ].join('\n'),
    });
  });
  after(() => host?.stop());

  it('a mail-from filter killed: MAIL is answered 451 until it is back, then it refuses again', async () => {
    const c = await ehlo(host, '127.0.0.1');
    assert.equal((await c.cmd('MAIL FROM:<blocked@evil.test>')).code, 550);
    c.close();

    await sender.kill(host, 'hold');
    const dead = await ehlo(host, '127.0.0.1');
    const refused = await dead.cmd('MAIL FROM:<blocked@evil.test>');
    assert.equal(refused.code, 451, 'the sender the filter refuses is not accepted while it is down');
    assert.match(refused.text, /4\.3\.0 Temporary filter failure/);
    assert.equal((await dead.cmd('MAIL FROM:<friend@good.test>')).code, 451, 'nobody passes an absent filter');
    assert.equal((await dead.cmd('NOOP')).code, 250, 'the session goes on');

    await sender.restartHeld(host);
    assert.equal((await dead.cmd('MAIL FROM:<blocked@evil.test>')).code, 451, 'nor while its restart is in the handshake');
    dead.close();

    await sender.release(host);
    const back = await ehlo(host, '127.0.0.1');
    assert.equal((await back.cmd('MAIL FROM:<blocked@evil.test>')).code, 550, 'refused again once restarted');
    back.close();
    assert.equal(await send(host, '127.0.0.1', 'alice@example.test', 'after'), 250);
    assert.match(host.daemon.logs(), /filter-error filter=sender phase=mail-from error="filter sender is not running"/);
  });

  it('a data-line filter killed: DATA is answered 451, and a body already under way is refused, never delivered unfiltered', async () => {
    assert.equal(await send(host, '127.0.0.2', 'bob@example.test', 'first'), 250);
    await eventually(async () => (await host.maildir('bob')).length === 1 || undefined, 'the first message');

    // the filter dies between DATA's 354 and the body
    const c = await ehlo(host, '127.0.0.2');
    assert.equal((await c.cmd('MAIL FROM:<friend@good.test>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<bob@example.test>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    await signer.kill(host, 'hold');
    assert.equal((await c.cmd('Subject: under way\r\n\r\nunsigned?\r\n.')).code, 451);

    // and while it is down, DATA itself is refused
    assert.equal((await c.cmd('MAIL FROM:<friend@good.test>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<bob@example.test>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 451);
    c.close();

    await signer.release(host);
    assert.equal(await send(host, '127.0.0.2', 'bob@example.test', 'last'), 250);
    const box = await eventually(async () => { const m = await host.maildir('bob'); return m.length >= 2 ? m : undefined; }, 'the last message');
    assert.equal(box.length, 2, 'nothing but the two filtered messages was delivered');
    for (const msg of box) assert.match(msg, /^X-Gate: passed$/m);
  });

  it('a restart that fails is tried again, later, until the filter is back; the gate stays shut meanwhile', async () => {
    const before = sender.starts(host);
    await sender.kill(host, 'crash');
    await host.daemon.waitForLog(/filter-error filter=sender error="filter sender exited during the handshake/);
    assert.equal(await send(host, '127.0.0.1', 'alice@example.test', 'between'), 451);
    await eventually(async () => sender.starts(host) > before, 'the second restart');
    const c = await ehlo(host, '127.0.0.1');
    assert.equal((await c.cmd('MAIL FROM:<blocked@evil.test>')).code, 550);
    c.close();
  });
});
