/**
 * Relay options that take tables, through the daemon: `relay host <table>` picks its smarthost
 * from a relayhost list, `src <table>` binds a source address from a list and `helo-src <table>`
 * names it with the addrname table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, sendMessage, startMailHost } from '../harness/mail.js';
import { Sink } from './sink.js';

test('relay host <table>, src <table> and helo-src <table>', async () => {
  const sink = await Sink.start({ host: '127.0.0.6', caps: ['PIPELINING'] });
  const host = await startMailHost({
    extra: [
      `table smarthosts { "smtp://127.0.0.6:${sink.port}" }`,
      'table sources { 127.0.0.7 }',
      'table names { 127.0.0.7 = "out7.example.test" }',
      'action "out" relay host <smarthosts> src <sources> helo-src <names>',
    ].join('\n'),
    rules: 'match from any for domain "remote.test" action "out"',
  });
  try {
    assert.equal((await sendMessage(host.port, 's@client.test', ['x@remote.test'], 'Subject: t\r\n\r\nx')).at(-1)!.code, 250);
    await eventually(async () => sink.transactions[0], 'relayed');
    assert.ok(sink.commands[0]!.includes('EHLO out7.example.test'), JSON.stringify(sink.commands[0]));
    await host.daemon.waitForLog(/mta delivery .*result="Ok"/);
  } finally {
    await host.stop();
    await sink.close();
  }
});
