/** `--help` on every program prints the usage and every option and exits 0; `tsmtpctl help` lists the commands. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { allCommands } from '../../src/control/help.js';
import type { CommandEnv } from '../../src/control/commands.js';
import { TSMTPD_BIN } from '../harness/daemon.js';

const BIN = dirname(TSMTPD_BIN);
const run = (program: string, args: string[]) => spawnSync(process.execPath, [join(BIN, program), ...args], { encoding: 'utf8', timeout: 10_000 });

const OPTIONS: Record<string, string[]> = {
  'tsmtpd.js': ['-B', '-D', '-d', '-f', '-h', '--help', '-n', '-v', '--log', '--spool', 'TSMTPD_LIBEXEC', 'Exit status'],
  'tsmtpctl.js': ['-h', '--help', '--json', '--resolver', '--spool', 'tsmtpctl help', 'Exit status'],
  'makemap.js': ['-h', '--help', '-o', '-t aliases', '-t set', '-U', 'Exit status'],
  'sendmail.js': ['-f', '-r', '-F', '-i', '-oi', '-t', '--spool', '--help', '--', 'Exit status'],
};

for (const [program, options] of Object.entries(OPTIONS)) {
  test(`${program} --help: usage and every option, exit 0`, () => {
    const r = run(program, ['--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^usage: /);
    for (const o of options) assert.ok(r.stdout.includes(o), `${program} --help lacks ${o}:\n${r.stdout}`);
  });
}

test('tsmtpd -h and makemap -h are --help too', () => {
  for (const program of ['tsmtpd.js', 'makemap.js']) assert.equal(run(program, ['-h']).stdout, run(program, ['--help']).stdout);
});

test('tsmtpctl help lists every command the daemon answers and those it answers itself, exit 0', () => {
  const r = run('tsmtpctl.js', ['help']);
  assert.equal(r.status, 0, r.stderr);
  const env = { traces: new Set(), profiles: new Set() } as unknown as CommandEnv;
  for (const c of allCommands(env)) assert.ok(r.stdout.includes(`  ${c.words.join(' ')}`), `missing ${c.words.join(' ')}`);
  for (const c of ['encrypt', 'spf walk']) assert.ok(r.stdout.includes(`  ${c}`), c);
  assert.equal(run('tsmtpctl.js', []).status, 2, 'no command is a usage error');
});
