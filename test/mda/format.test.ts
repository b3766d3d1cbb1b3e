/** OpenSMTPD's %{...} format: tokens, substrings, modifiers, sanitising, `~/`, errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { expandFormat, MAILADDR_ESCAPE, stripTag, substring, type FormatVars } from '../../src/mda/format.js';

const vars: FormatVars = {
  sender: 'Alice.Smith+news@Example.ORG',
  rcpt: 'Gilles+Hackers@Poolp.org',
  dest: 'gilles@poolp.org',
  username: 'gilles',
  directory: '/home/gilles',
  subAddrDelim: '+',
};

function expand(fmt: string, v: FormatVars = vars): string {
  const r = expandFormat(fmt, v);
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

test('every token expands to its part of the envelope', () => {
  assert.equal(expand('%{sender}'), 'Alice.Smith+news@Example.ORG');
  assert.equal(expand('%{sender.user}/%{sender.domain}'), 'Alice.Smith+news/Example.ORG');
  assert.equal(expand('%{rcpt.user}@%{rcpt.domain}'), 'Gilles+Hackers@Poolp.org');
  assert.equal(expand('%{dest} %{dest.user} %{dest.domain}'), 'gilles@poolp.org gilles poolp.org');
  assert.equal(expand('%{user.username}:%{user.directory}'), 'gilles:/home/gilles');
  assert.equal(expand('%{mbox.from}'), 'Alice.Smith+news@Example.ORG');
  assert.equal(expand('%{mbox.from}', { ...vars, sender: '' }), 'MAILER-DAEMON');
  assert.equal(expand('[%{sender}]', { ...vars, sender: '' }), '[]');
  assert.equal(expand('%{RCPT.DOMAIN}'), 'Poolp.org', 'token names are case-insensitive');
});

test('modifiers chain with |', () => {
  assert.equal(expand('%{rcpt:lowercase}'), 'gilles+hackers@poolp.org');
  assert.equal(expand('%{rcpt.user:uppercase}'), 'GILLES+HACKERS');
  assert.equal(expand('%{rcpt:strip}'), 'Gilles@Poolp.org');
  assert.equal(expand('%{rcpt.user:strip|lowercase}'), 'gilles');
  assert.equal(expandFormat('%{rcpt:shout}', vars).ok, false);
  assert.equal(expandFormat('%{rcpt:}', vars).ok, false);
});

test('substrings follow OpenSMTPD offsets (inclusive end, negatives from the end)', () => {
  assert.equal(expand('%{dest.user[0]}'), 'g');
  assert.equal(expand('%{dest.user[1:3]}'), 'ill');
  assert.equal(expand('%{dest.user[2:]}'), 'lles');
  assert.equal(expand('%{dest.user[:1]}'), 'gi');
  assert.equal(expand('%{dest.user[-3:]}'), 'les');
  assert.equal(expand('%{dest.user[0:100]}'), 'gilles');
  assert.equal(expand('%{dest.domain[0:-1]:uppercase}'), 'POOLP.OR', 'a negative end counts from the last index');
  assert.equal(expandFormat('%{dest.user[10]}', vars).ok, false, 'begin past the end');
  assert.equal(expandFormat('%{dest.user[]}', vars).ok, false);
  assert.equal(expandFormat('%{dest.user[x]}', vars).ok, false);
  assert.equal(expandFormat('%{dest.user[3:1]}', vars).ok, false);
  assert.equal(expand('%{sender[3]}', { ...vars, sender: '' }), '', 'an empty value stays empty');
});

test('shell metacharacters from addresses become ":" unless raw; directory and mda never', () => {
  const evil = { ...vars, sender: "a`id`$(x)|y;z&'q'!#%*?{}~@evil.example" };
  const out = expand('%{sender}', evil);
  for (const ch of MAILADDR_ESCAPE) assert.ok(!out.includes(ch), `${ch} in ${out}`);
  assert.equal(expand('%{sender:raw}', evil), evil.sender);
  assert.equal(expand('%{user.directory}', { ...vars, directory: '/home/a$b' }), '/home/a$b');
  assert.equal(expand('wrap %{mda}', { ...vars, mda: 'cmd | x' }), 'wrap cmd | x');
});

test('~/ at the start is the home; %% is a percent; bad syntax fails', () => {
  assert.equal(expand('~/Maildir/%{rcpt.domain:lowercase}'), '/home/gilles/Maildir/poolp.org');
  assert.equal(expand('a~/b'), 'a~/b');
  assert.equal(expand('100%% %{dest.user}'), '100% gilles');
  assert.equal(expandFormat('%{dest', vars).ok, false);
  assert.equal(expandFormat('%{nosuch}', vars).ok, false);
  assert.equal(expandFormat('%{mda}', vars).ok, false, 'mda exists only for wrappers');
  assert.equal(expandFormat('%{' + 'x'.repeat(200) + '}', vars).ok, false);
  assert.equal(expandFormat('%{sender}', { ...vars, sender: 'a'.repeat(2000) + '@x' }).ok, false);
});

test('strip removes the tag up to the domain', () => {
  assert.equal(stripTag('a+b+c@d', '+'), 'a@d');
  assert.equal(stripTag('a-b', '-'), 'a');
  assert.equal(stripTag('plain@d', '+'), 'plain@d');
});

test('property: any address expands to a value with no escaped character', () => {
  fc.assert(fc.property(fc.string({ maxLength: 200 }), fc.string({ maxLength: 60 }), (local, domain) => {
    const r = expandFormat('deliver %{sender} %{rcpt.user:lowercase} %{dest.domain}', {
      ...vars, sender: `${local}@${domain}`, rcpt: `${local}@x`, dest: `u@${domain}`,
    });
    if (!r.ok) return true;
    return ![...MAILADDR_ESCAPE].some((c) => r.value.includes(c));
  }));
});

test('property: a format without %{ or ~/ is itself, %% halved', () => {
  fc.assert(fc.property(fc.string({ maxLength: 300 }).filter((s) => !s.includes('%') && !s.startsWith('~/')), (s) => {
    const r = expandFormat(s, vars);
    return s.length >= 1024 ? !r.ok : r.ok && r.value === s;
  }));
});

test('property: substring matches an inclusive slice for non-negative offsets', () => {
  fc.assert(fc.property(fc.string({ minLength: 1, maxLength: 50 }), fc.nat(60), fc.nat(60), (s, a, b) => {
    const r = substring(s, a, b);
    if (a >= s.length || Math.min(b, s.length - 1) < a) return !r.ok;
    return r.ok && r.value === s.slice(a, Math.min(b, s.length - 1) + 1);
  }));
});
