/**
 * Issue 16, grammar: what OpenSMTPD 7.8's parse.y accepts and tsmtpd refused. Inline tables
 * stand wherever its `tables` rule does (tablenew | tableref), `=>` is its ARROW separator, a
 * builtin filter's reply text is not checked, keywords quoted are names, and yylex's strings.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import type { Config, TableDecl } from '../../src/config/types.js';

const parse = (text: string) => parseConfig(text, { file: 'smtpd.conf' });
const inline = (c: Config, name: string | undefined): TableDecl['inline'] => c.tables.get(name!)!.inline;

test('inline tables in match criteria: from src { ... } for domain { ... } (parse.y match_option: tables)', () => {
  const c = parse(`action "in" maildir
match from src { 127.0.0.0/8, 10.0.0.0/8 } for domain { a.org, b.org } action "in"
match from rdns { "mx.example" } mail-from { "@a.org" } rcpt-to { "@b.org" } action "in"
match from any for domain regex { "^(a|b)\\.org$" } action "in"
`);
  const [src, dom] = c.rules[0]!.criteria.map((x) => ('table' in x.criterion ? x.criterion.table : undefined));
  assert.deepEqual(inline(c, src?.table), { kind: 'list', values: ['127.0.0.0/8', '10.0.0.0/8'] });
  assert.deepEqual(inline(c, dom?.table), { kind: 'list', values: ['a.org', 'b.org'] });
  assert.equal(c.rules[1]!.criteria.length, 4);
  const regex = c.rules[2]!.criteria[1]!.criterion;
  assert.equal(regex.kind === 'for-domain' && regex.table.regex, true);
});

test('inline tables in actions and listeners: virtual { "@" = "vmail" }, hostnames, senders, auth, relay host/src/helo-src', () => {
  const c = parse(`pki mx.example cert "/c"
pki mx.example key "/k"
listen on 127.0.0.1 tls pki mx.example auth { alice = "$2b$10$abc" } senders { alice = "alice@a.org" } masquerade hostnames { 127.0.0.1 = mx.a.org }
action "v" maildir "/var/vmail/%{dest.domain}/%{dest.user}" virtual { "@" = "vmail" } userbase { vmail = "2000:2000:/var/vmail" }
action "r" relay host { "smtp://10.0.0.1", "smtp://10.0.0.2" } src { 192.0.2.1, 192.0.2.2 } helo-src { 192.0.2.1 = mx1.a.org }
match from any for any action "v"
`);
  const l = c.listeners[0]!;
  assert.deepEqual(inline(c, l.authTable), { kind: 'map', entries: [['alice', '$2b$10$abc']] });
  assert.deepEqual(inline(c, l.senders?.table), { kind: 'map', entries: [['alice', 'alice@a.org']] });
  assert.equal(l.senders?.masquerade, true);
  assert.deepEqual(inline(c, l.hostnames), { kind: 'map', entries: [['127.0.0.1', 'mx.a.org']] });
  const v = c.actions.get('v')!;
  assert.deepEqual(inline(c, v.virtual), { kind: 'map', entries: [['@', 'vmail']] });
  assert.deepEqual(inline(c, v.userbase), { kind: 'map', entries: [['vmail', '2000:2000:/var/vmail']] });
  const r = c.actions.get('r')!.relay!;
  assert.deepEqual(inline(c, r.hostTable), { kind: 'list', values: ['smtp://10.0.0.1', 'smtp://10.0.0.2'] });
  assert.deepEqual(inline(c, r.srcTable), { kind: 'list', values: ['192.0.2.1', '192.0.2.2'] });
  assert.deepEqual(inline(c, r.heloSrc), { kind: 'map', entries: [['192.0.2.1', 'mx1.a.org']] });
});

test('the widely copied dyndns filter: match rdns regex { ... } junk (filter_phase_check_rdns_regex)', () => {
  const c = parse(`filter check_dyndns phase connect match rdns regex { '.*\\.dyn\\..*', '.*\\.dsl\\..*' } junk
filter check_rdns phase connect match !rdns disconnect "550 no rDNS is so 80s"
filter check_fcrdns phase connect match !fcrdns disconnect "550. Rejected. No FCrDNS."
listen on 127.0.0.1 filter { check_dyndns, check_rdns, check_fcrdns }
action "in" maildir
match from any for any action "in"
`);
  const f = c.filters.get('check_dyndns')!;
  assert.equal(f.kind, 'builtin');
  if (f.kind !== 'builtin') return;
  const cond = f.conditions[0]!.condition;
  assert.equal(cond.kind, 'rdns');
  if (cond.kind !== 'rdns') return;
  assert.equal(cond.table?.regex, true);
  // inside quotes a backslash before anything but the quote, a blank or a newline stays
  assert.deepEqual(inline(c, cond.table?.table), { kind: 'list', values: ['.*\\.dyn\\..*', '.*\\.dsl\\..*'] });
  const fc = c.filters.get('check_fcrdns')!;
  assert.deepEqual(fc.kind === 'builtin' && fc.decision, { kind: 'disconnect', message: '550. Rejected. No FCrDNS.' });
});

test('tables and filter lists over several lines (parse.y since 7.5: comma, newline or blank between entries)', () => {
  const c = parse('table t {\n  a = "1",\n  b = "2"\n}\ntable l { x y, z\n w }\nfilter a phase connect match rdns junk\nfilter b phase connect match fcrdns junk\nlisten on lo filter {\n  a,\n  b\n}\naction "v" mbox virtual <t>\nmatch for any action "v"\n');
  assert.deepEqual(inline(c, 't'), { kind: 'map', entries: [['a', '1'], ['b', '2']] });
  assert.deepEqual(inline(c, 'l'), { kind: 'list', values: ['x', 'y', 'z', 'w'] });
  assert.deepEqual(c.filters.get(c.listeners[0]!.filter!)!.kind === 'chain' && c.filters.get(c.listeners[0]!.filter!), { name: c.listeners[0]!.filter, kind: 'chain', filters: ['a', 'b'], where: c.listeners[0]!.where });
});

test('=> is a key/value separator (yylex returns ARROW, parse.y assign: \'=\' | ARROW)', () => {
  const c = parse('table v { "@" => "vmail", "abuse@a.org" => "root" }\naction "v" mbox virtual <v>\nmatch for any action "v"\n');
  assert.deepEqual(inline(c, 'v'), { kind: 'map', entries: [['@', 'vmail'], ['abuse@a.org', 'root']] });
});

test('keywords are names once quoted: action "relay" relay, table "userbase", < "userbase" >', () => {
  const c = parse('table "userbase" { vmail = "1:1:/h" }\naction "relay" relay\naction "local" maildir userbase < "userbase" >\nmatch for any action "relay"\n');
  assert.ok(c.actions.has('relay'));
  assert.equal(c.actions.get('local')!.userbase, 'userbase');
});

test('yylex strings: a newline inside quotes is dropped, \\" and \\<blank> escape, other backslashes stay', () => {
  const c = parse('action "a" mda "/usr/bin/procmail\n -f \\"x\\" \\d"\nmatch for any action "a"\n');
  assert.deepEqual(c.actions.get('a')!.method, { kind: 'mda', command: '/usr/bin/procmail -f "x" \\d' });
  assert.equal(c.rules[0]!.where.line, 3, 'lines inside the string still count');
});

test('macros join the word characters that follow them, as smtpd pushes the value back into its input', () => {
  const c = parse('net = "10.0.0"\nlisten on 127.0.0.1\naction "a" relay\nmatch from src $net.0/8 for any action "a"\n');
  const src = c.rules[0]!.criteria[0]!.criterion;
  assert.deepEqual(inline(c, src.kind === 'from-src' ? src.table.table : undefined), { kind: 'list', values: ['10.0.0.0/8'] });
});

test('a value that starts with a letter, digit, colon or underscore needs no quotes; others do', () => {
  const c = parse('listen on ::1\ntable a file:/etc/mail/aliases\naction "a" relay host smtp+tls://bob@smtp.example.com:587\nmatch for any action "a"\n');
  assert.equal(c.listeners[0]!.interface, '::1');
  assert.equal(c.actions.get('a')!.relay!.host, 'smtp+tls://bob@smtp.example.com:587');
});
