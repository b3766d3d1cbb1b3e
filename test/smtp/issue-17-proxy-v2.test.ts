/**
 * Issue 17, `listen ... proxy-v2`: the PROXY protocol v2 header is read before SMTP, as
 * OpenSMTPD's proxy_session()/proxy_io() read it; the client's address from the header is the
 * session's (log, EHLO greeting, Received:), a LOCAL header keeps the connection's, and a
 * connection that does not start with a valid header is closed without a word (proxy_error()).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { parseProxyV2 } from '../../src/smtp/proxy-v2.js';
import { eventually, startMailHost, type MailHost } from '../harness/mail.js';
import { freePort, SmtpTestClient } from '../harness/net.js';

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

function v4Header(src: string, sport: number, dst: string, dport: number, command = 0x21, tlv = Buffer.alloc(0)): Buffer {
  const addr = Buffer.alloc(12);
  src.split('.').forEach((o, i) => (addr[i] = Number(o)));
  dst.split('.').forEach((o, i) => (addr[4 + i] = Number(o)));
  addr.writeUInt16BE(sport, 8);
  addr.writeUInt16BE(dport, 10);
  const head = Buffer.from([command, 0x11, 0, 0]);
  head.writeUInt16BE(12 + tlv.length, 2);
  return Buffer.concat([SIG, head, addr, tlv]);
}

test('parseProxyV2 (proxy_header_validate, proxy_translate_ss): v4, v6, LOCAL, TLVs skipped, errors named as smtpd names them', () => {
  const h = v4Header('192.0.2.1', 4321, '198.51.100.2', 25, 0x21, Buffer.from([0x04, 0x00, 0x01, 0x07]));
  assert.deepEqual(parseProxyV2(h.subarray(0, 20)), { kind: 'need' });
  assert.deepEqual(parseProxyV2(Buffer.concat([h, Buffer.from('EHLO x\r\n')])), {
    kind: 'proxy', length: h.length, source: { address: '192.0.2.1', port: 4321 }, destination: { address: '198.51.100.2', port: 25 },
  });
  const v6 = Buffer.alloc(36);
  Buffer.from('20010db8000000000000000000000001', 'hex').copy(v6, 0);
  Buffer.from('00000000000000000000ffffc0000202', 'hex').copy(v6, 16);
  v6.writeUInt16BE(1000, 32);
  v6.writeUInt16BE(587, 34);
  const h6 = Buffer.concat([SIG, Buffer.from([0x21, 0x21, 0, 36]), v6]);
  assert.deepEqual(parseProxyV2(h6), { kind: 'proxy', length: 52, source: { address: '2001:db8::1', port: 1000 }, destination: { address: '192.0.2.2', port: 587 } });
  assert.deepEqual(parseProxyV2(Buffer.concat([SIG, Buffer.from([0x20, 0x00, 0, 0])])), { kind: 'local', length: 16 });
  assert.deepEqual(parseProxyV2(Buffer.from('EHLO client\r\n')), { kind: 'error', reason: 'invalid signature' });
  assert.deepEqual(parseProxyV2(Buffer.concat([SIG, Buffer.from([0x11, 0x11, 0, 12])])), { kind: 'error', reason: 'invalid version' });
  assert.deepEqual(parseProxyV2(Buffer.concat([SIG, Buffer.from([0x21, 0x12, 0, 12])])), { kind: 'error', reason: 'unsupported address family' });
  assert.deepEqual(parseProxyV2(Buffer.concat([SIG, Buffer.from([0x21, 0x11, 0, 4])])), { kind: 'error', reason: 'address info too short' });
  assert.deepEqual(parseProxyV2(v4Header('1.2.3.4', 1, '5.6.7.8', 2, 0x22)), { kind: 'error', reason: 'unknown command' });
  assert.deepEqual(parseProxyV2(Buffer.concat([SIG, Buffer.from([0x21, 0x00, 0, 0])])), { kind: 'error', reason: 'UNSPEC family not supported for PROXYing' });
});

let host: MailHost;
let port: number;

before(async () => {
  port = await freePort();
  host = await startMailHost({ listen: false, extra: `listen on 127.0.0.1 port ${port} proxy-v2 hostname mx.example.test` });
});
after(async () => {
  await host.stop();
});

async function proxied(header: Buffer): Promise<SmtpTestClient> {
  const socket = await new Promise<import('node:net').Socket>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
  // the header and the first command in one write, as a proxy forwards a pipelining client
  socket.write(Buffer.concat([header, Buffer.from('EHLO client.example.test\r\n')]));
  return SmtpTestClient.over(socket);
}

test('PROXY: the header\'s client address is the session\'s, in the log, the EHLO greeting and Received:', async () => {
  const c = await proxied(v4Header('127.0.0.66', 40000, '127.0.0.1', port));
  assert.match((await c.reply()).lines[0]!, /^220 mx\.example\.test /);
  assert.match((await c.reply()).lines[0]!, /^250-mx\.example\.test Hello client\.example\.test \[127\.0\.0\.66\]/);
  assert.equal((await c.cmd('MAIL FROM:<alice@example.test>')).code, 250);
  assert.equal((await c.cmd('RCPT TO:<bob@example.test>')).code, 250);
  assert.equal((await c.cmd('DATA')).code, 354);
  assert.equal((await c.cmd('Subject: proxied\r\n\r\nhi\r\n.')).code, 250);
  c.close();
  const [msg] = await eventually(async () => {
    const m = (await host.maildir('bob')).filter((x) => x.includes('Subject: proxied'));
    return m.length ? m : undefined;
  }, 'delivery');
  assert.match(msg!, /^Received: from client\.example\.test \(\S+ \[127\.0\.0\.66\]\)/m);
  assert.match(host.daemon.logs(), /^([0-9a-f]{16}) smtp proxy address=127\.0\.0\.1\n(?:.*\n)*?\1 smtp connected address=127\.0\.0\.66 host=/m);
});

test('LOCAL keeps the connection\'s address; no header at all, or a broken one, is closed without a banner', async () => {
  const local = await proxied(Buffer.concat([SIG, Buffer.from([0x20, 0x00, 0, 0])]));
  await local.reply();
  assert.match((await local.reply()).lines[0]!, /Hello client\.example\.test \[127\.0\.0\.1\]/);
  local.close();

  const plain = await proxied(Buffer.alloc(0));
  await plain.closedByPeer();
  assert.equal(plain.socket.bytesRead, 0, 'no banner before the PROXY header');
  await eventually(async () => /smtp proxy event=closed address=127\.0\.0\.1 reason="protocol error \(invalid signature\)"/.test(host.daemon.logs()) || undefined, 'the refusal logged');
});

test('smtps behind the proxy: the TLS handshake follows the header, even in the same segment', async (t) => {
  const { makeTestPki } = await import('../harness/certs.js');
  const { readFile } = await import('node:fs/promises');
  const { connect: tlsConnect } = await import('node:tls');
  const { Duplex } = await import('node:stream');
  const pki = await makeTestPki();
  const mx = await pki.issue('mx.example.test');
  const smtps = await freePort();
  const h = await startMailHost({
    listen: false,
    extra: [`pki mx.example.test cert "${mx.cert}"`, `pki mx.example.test key "${mx.key}"`,
      `listen on 127.0.0.1 port ${smtps} smtps proxy-v2 pki mx.example.test hostname mx.example.test`].join('\n'),
  });
  t.after(() => h.stop());
  const raw = await new Promise<import('node:net').Socket>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: smtps }, () => resolve(s));
    s.once('error', reject);
  });
  // the header goes out in the same write as the ClientHello: TLS writes through this stream
  let header: Buffer | null = v4Header('127.0.0.77', 1234, '127.0.0.1', smtps);
  const glue = new Duplex({
    write(chunk: Buffer, _enc, cb) { raw.write(header ? Buffer.concat([header, chunk]) : chunk, cb); header = null; },
    read() { raw.resume(); },
  });
  raw.on('data', (d) => glue.push(d));
  raw.on('end', () => glue.push(null));
  const secure = tlsConnect({ socket: glue, servername: 'mx.example.test', ca: await readFile(pki.ca) });
  const c = SmtpTestClient.over(secure as unknown as import('node:net').Socket);
  assert.match((await c.reply()).lines[0]!, /^220 mx\.example\.test /);
  assert.match((await c.cmd('EHLO client.example.test')).lines[0]!, /\[127\.0\.0\.77\]/);
  c.close();
  raw.destroy();
});
