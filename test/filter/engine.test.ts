/**
 * The filter engine on its own, with a real filter process and real modules: before a filter has
 * started (a session asking the lka before start(), or during the handshake) it fails closed
 * with 421/451 per phase, and a module whose factory returns a malformed filter does not load.
 * OpenSMTPD serves no session before every filter registered (lka.c proc_timeout); tsmtpd's lka
 * answers instead, so the engine itself must refuse.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SessionFacts } from '../../src/bus/messages.js';
import { parseConfig } from '../../src/config/load.js';
import type { FilterPhase } from '../../src/config/types.js';
import type { Resolver } from '../../src/dns/resolver.js';
import { FilterEngine, type PhaseVerdict } from '../../src/filter/engine.js';
import { configureLog } from '../../src/log.js';
import { eventually } from '../harness/mail.js';
import type { TableSet } from '../../src/table/types.js';

configureLog({ sink: { write: () => {} }, level: 'error', timestamps: false });
const GATE = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/filters/gate.py');

function engine(dir: string, lines: string[]): FilterEngine {
  const rules = ['action "local" maildir', 'match for local action "local"'];
  const config = parseConfig([...lines, ...rules].join('\n') + '\n', { file: join(dir, 'smtpd.conf') });
  const none = () => Promise.reject(new Error('no DNS in this test'));
  return new FilterEngine({
    config,
    tables: () => ({ get: () => undefined, update: async () => {} }) as unknown as TableSet,
    resolver: { a: none, aaaa: none, mx: none, txt: none, ptr: none, close() {} } as unknown as Resolver,
    now: () => Date.now(),
    increment() {},
  });
}

function facts(listener: number): SessionFacts {
  return { sessionId: '0123456789abcdef', listener, clientAddress: '127.0.0.1', clientPort: 40000, localAddress: '127.0.0.1', localPort: 25, tls: false, socket: false };
}

const ask = (e: FilterEngine, listener: number, phase: FilterPhase, param = '') => e.phase({ facts: facts(listener), phase, param });
const code = (v: PhaseVerdict) => (v.kind === 'proceed' ? 'proceed' : `${v.kind} ${v.reply.code}`);

describe('filter engine: a filter that has not started yet fails closed', () => {
  let dir: string;
  let e: FilterEngine;
  let started: Promise<void> | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsmtpd-engine-'));
    // the process waits for `release` before its handshake; the module's factory waits for a global
    await writeFile(join(dir, 'hold'), '');
    await writeFile(join(dir, 'late.js'), `
      export default async function create() {
        await new Promise((resolve) => { globalThis.releaseLateModule = resolve; });
        return { phases: { 'mail-from': () => ({ decision: 'reject', reply: '550 5.7.1 late says no' }) } };
      }
    `);
    e = engine(dir, [
      `filter "gate" proc-exec "/usr/bin/python3 ${GATE} ${dir} mail-from"`,
      'filter "late" module "late.js"',
      'listen on 127.0.0.1 port 2525 filter "gate"',
      'listen on 127.0.0.2 port 2525 filter "late"',
    ]);
  });
  after(() => e?.stop());

  it('before start(), and during the handshake, every phase is 421 outside a transaction and 451 inside one', async () => {
    const expected: [FilterPhase, string][] = [
      ['connect', 'disconnect 421'], ['ehlo', 'disconnect 421'], ['auth', 'disconnect 421'], ['rset', 'disconnect 421'],
      ['mail-from', 'reject 451'], ['rcpt-to', 'reject 451'], ['data', 'reject 451'], ['commit', 'reject 451'],
    ];
    for (const [phase, want] of expected) {
      assert.equal(code(await ask(e, 0, phase, 'a@b.test')), want, `process, ${phase}, before start()`);
      assert.equal(code(await ask(e, 1, phase, 'a@b.test')), want, `module, ${phase}, before start()`);
    }
    started = e.start();
    assert.equal(code(await ask(e, 0, 'mail-from', 'friend@good.test')), 'reject 451', 'process in its handshake');
    assert.equal(code(await ask(e, 1, 'mail-from', 'friend@good.test')), 'reject 451', 'module loading');
  });

  it('once started, each decides, and only for what it registered', async () => {
    started ??= e.start();
    await writeFile(join(dir, 'release'), '');
    await eventually(async () => (globalThis as { releaseLateModule?: () => void }).releaseLateModule, 'the module factory');
    (globalThis as { releaseLateModule?: () => void }).releaseLateModule!();
    await started;
    assert.equal(code(await ask(e, 0, 'mail-from', 'blocked@evil.test')), 'reject 550');
    assert.equal(code(await ask(e, 0, 'mail-from', 'friend@good.test')), 'proceed');
    assert.equal(code(await ask(e, 0, 'connect')), 'proceed', 'a phase it did not register');
    assert.equal(code(await ask(e, 1, 'mail-from', 'friend@good.test')), 'reject 550');
    assert.equal(code(await ask(e, 1, 'ehlo', 'client.test')), 'proceed');
  });
});

describe('filter engine: a module that returns a malformed filter does not load', () => {
  const cases: [string, string, RegExp][] = [
    ['a misspelt phase', `{ phases: { mail_from: () => ({ decision: 'proceed' }) } }`, /unknown phase mail_from/],
    ['a data-line handler', `{ phases: { 'data-line': () => ({ decision: 'proceed' }) } }`, /unknown phase data-line/],
    ['a handler that is not a function', `{ phases: { helo: 'proceed' } }`, /the helo handler is not a function/],
    ['no filter at all', 'undefined', /returned no filter object/],
  ];
  for (const [what, body, error] of cases) {
    it(what, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-engine-'));
      await writeFile(join(dir, 'broken.js'), `export default function create() { return ${body}; }`);
      const e = engine(dir, ['filter "broken" module "broken.js"', 'listen on 127.0.0.1 port 2525 filter "broken"']);
      await assert.rejects(e.start(), (err: Error) => error.test(err.message) && err.message.startsWith('filter broken: '));
      // and a daemon that went on anyway would still refuse what the module was meant to judge
      assert.equal(code(await ask(e, 0, 'helo', 'client.test')), 'disconnect 421');
      await e.stop();
    });
  }
});
