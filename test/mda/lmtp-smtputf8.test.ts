/**
 * Issue 15 item 2 for LMTP (mail.lmtp's dialogue; OpenSMTPD 7.8 has no SMTPUTF8): an SMTPUTF8
 * message's MAIL FROM carries SMTPUTF8 when the LMTP server's LHLO offers it, UTF-8 addresses
 * go once encoded; a server that does not offer it never gets a UTF-8 address (5.6.7, RFC 6531
 * §3.2). A server's UTF-8 reply reaches the result as written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deliverLmtp } from '../../src/mda/lmtp.js';
import { fileLines, MESSAGE, tempDir, writeBody } from './helpers.js';
import { startLmtpServer } from './lmtp-server.js';

const HOST = '127.0.0.1';
const utf8 = (latin1: string) => Buffer.from(latin1, 'latin1').toString('utf8');

test('LMTP: SMTPUTF8 passed on when offered, UTF-8 addresses once encoded, UTF-8 replies kept', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const srv = await startLmtpServer({ caps: ['SMTPUTF8'], final: (acc) => acc.map(() => '250 2.0.0 gespeichert für jörg') }, { port: 0, host: HOST });
  t.after(srv.close);
  const body = await writeBody(dir, MESSAGE);
  const results = await deliverLmtp({
    destination: `${HOST}:${srv.port}`, lhlo: 'mx.test', mailFrom: 'émile@example.net', rcpts: ['jörg@x'], smtputf8: true, timeoutMs: 5_000,
  }, fileLines(body));
  assert.deepEqual(results, [{ result: 'ok', detail: '250 2.0.0 gespeichert für jörg' }]);
  assert.deepEqual(srv.recorded.commands.slice(0, 3).map(utf8), ['LHLO mx.test', 'MAIL FROM:<émile@example.net> SMTPUTF8', 'RCPT TO:<jörg@x>']);
});

test('LMTP: a server without SMTPUTF8 never gets a UTF-8 address (5.6.7); ASCII addresses go without the parameter', async (t) => {
  const { dir, cleanup } = await tempDir();
  t.after(cleanup);
  const srv = await startLmtpServer({}, { port: 0, host: HOST });
  t.after(srv.close);
  const body = await writeBody(dir, MESSAGE);
  const refused = await deliverLmtp({
    destination: `${HOST}:${srv.port}`, lhlo: 'mx.test', mailFrom: 'a@example.net', rcpts: ['jörg@x'], smtputf8: true, timeoutMs: 5_000,
  }, fileLines(body));
  assert.equal(refused[0]!.result, 'permfail');
  assert.equal((refused[0] as { enhanced: string }).enhanced, '5.6.7');
  assert.ok(!srv.recorded.commands.some((c) => /^(MAIL|RCPT)/.test(c)), 'no MAIL or RCPT sent');
  const ok = await deliverLmtp({
    destination: `${HOST}:${srv.port}`, lhlo: 'mx.test', mailFrom: 'a@example.net', rcpts: ['b@x'], smtputf8: true, timeoutMs: 5_000,
  }, fileLines(body));
  assert.equal(ok[0]!.result, 'ok');
  assert.ok(srv.recorded.commands.includes('MAIL FROM:<a@example.net>'));
});
