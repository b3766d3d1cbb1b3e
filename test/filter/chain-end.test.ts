/**
 * Issue 15 item 7: where a filter chain ends, as lka_filter.c runs it. A process's `junk`,
 * `rewrite` and `report` results go straight to the session (filter_result_junk,
 * filter_result_rewrite, filter_result_report answer IMSG_FILTER_SMTP_PROTOCOL) and the filters
 * after it are not asked; only `proceed` goes on (filter_protocol_next). A builtin's junk and
 * rewrite end the chain the same way in filter_protocol_internal(), while a builtin report only
 * emits its filter-report event and goes on to the next filter.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SessionFacts } from '../../src/bus/messages.js';
import { parseConfig } from '../../src/config/load.js';
import type { FilterPhase } from '../../src/config/types.js';
import type { Resolver } from '../../src/dns/resolver.js';
import { FilterEngine, type PhaseVerdict } from '../../src/filter/engine.js';
import { configureLog } from '../../src/log.js';
import type { TableSet } from '../../src/table/types.js';
import { peerSkip } from '../harness/peers.js';

configureLog({ sink: { write: () => {} }, level: 'error', timestamps: false });

// answers ehlo with report, mail-from with junk, rcpt-to with a rewrite
const ANSWER = `
import sys
def send(l):
    sys.stdout.write(l + "\\n"); sys.stdout.flush()
for line in sys.stdin:
    if line.rstrip("\\n") == "config|ready":
        break
for p in ("ehlo", "mail-from", "rcpt-to"):
    send("register|filter|smtp-in|" + p)
send("register|ready")
answers = {"ehlo": "report|proc saw ehlo", "mail-from": "junk", "rcpt-to": "rewrite|<carol@example.test>"}
for line in sys.stdin:
    f = line.rstrip("\\n").split("|")
    if f[0] == "filter":
        send("filter-result|%s|%s|%s" % (f[5], f[6], answers[f[4]]))
`;

// the filters after the deciding one refuse everything, so a verdict that reaches them shows
const TAIL = [
  'filter "tail-ehlo" phase ehlo match !rdns reject "550 5.7.1 tail reached at ehlo"',
  'filter "tail-mail" phase mail-from match !rdns reject "550 5.7.1 tail reached at mail-from"',
  'filter "tail-rcpt" phase rcpt-to match !rdns reject "550 5.7.1 tail reached at rcpt-to"',
];

function facts(listener: number): SessionFacts {
  return { sessionId: '0123456789abcdef', listener, clientAddress: '127.0.0.1', clientPort: 40000, localAddress: '127.0.0.1', localPort: 25, tls: false, socket: false };
}

const show = (v: PhaseVerdict) => (v.kind === 'proceed' ? `proceed junk=${v.junk} ${v.param}` : `${v.kind} ${v.reply.code} ${v.reply.text}`);

describe('filter chains end where lka_filter.c ends them', () => {
  let e: FilterEngine;
  const ask = async (listener: number, phase: FilterPhase, param: string) => show(await e.phase({ facts: facts(listener), phase, param }));

  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-chain-'));
    await writeFile(join(dir, 'answer.py'), ANSWER);
    const lines = [
      `filter "answer" proc-exec "/usr/bin/python3 ${join(dir, 'answer.py')}"`,
      'filter "b-report" phase ehlo match !rdns report "builtin saw ehlo"',
      'filter "b-junk" phase mail-from match !rdns junk',
      'filter "b-rewrite" phase rcpt-to match !rdns rewrite "<dave@example.test>"',
      ...TAIL,
      'filter "procs" chain { "answer", "tail-ehlo", "tail-mail", "tail-rcpt" }',
      'filter "builtins" chain { "b-report", "b-junk", "b-rewrite", "tail-ehlo", "tail-mail", "tail-rcpt" }',
      'listen on 127.0.0.1 port 2525 filter "procs"',
      'listen on 127.0.0.2 port 2525 filter "builtins"',
      'action "local" maildir',
      'match for local action "local"',
    ];
    const config = parseConfig(lines.join('\n') + '\n', { file: join(dir, 'smtpd.conf') });
    const none = () => Promise.reject(new Error('no DNS in this test'));
    e = new FilterEngine({
      config,
      tables: () => ({ get: () => undefined, update: async () => {} }) as unknown as TableSet,
      resolver: { a: none, aaaa: none, mx: none, txt: none, ptr: none, close() {} } as unknown as Resolver,
      now: () => Date.now(),
      increment() {},
    });
    if (!peerSkip('python3')) await e.start();
  });
  after(() => e?.stop());

  it('a process: junk, rewrite and report answer the session; the filters after it are not asked', { skip: peerSkip('python3') }, async () => {
    assert.equal(await ask(0, 'mail-from', 'alice@example.test'), 'proceed junk=true alice@example.test');
    assert.equal(await ask(0, 'rcpt-to', 'bob@example.test'), 'proceed junk=false <carol@example.test>');
    // the report text is the filter's report, not a new parameter: the command keeps its own
    assert.equal(await ask(0, 'ehlo', 'client.test'), 'proceed junk=false client.test');
  });

  it('builtins: junk and rewrite end the chain, a report goes on to the next filter', { skip: peerSkip('python3') }, async () => {
    assert.equal(await ask(1, 'mail-from', 'alice@example.test'), 'proceed junk=true alice@example.test');
    assert.equal(await ask(1, 'rcpt-to', 'bob@example.test'), 'proceed junk=false <dave@example.test>');
    assert.equal(await ask(1, 'ehlo', 'client.test'), 'reject 550 tail reached at ehlo');
  });
});
