/**
 * Every example configuration of smtpd.conf(5) (OpenSMTPD 7.8) and OpenSMTPD's shipped default
 * parse, into the Config the daemon's roles read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/config/load.js';

const parse = (text: string) => parseConfig(text, { file: 'smtpd.conf' });
/** The examples live in test/fixtures/smtpd.conf.5/, which the `tsmtpd -n` test also runs. */
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/smtpd.conf.5');
const fixture = (name: string) => parseConfig(readFileSync(join(FIXTURES, `${name}.conf`), 'utf8'), { file: 'smtpd.conf' });

test('OpenSMTPD default config', () => {
  const c = fixture('default');
  assert.deepEqual(c.tables.get('aliases'), { name: 'aliases', backend: 'file', config: '/etc/mail/aliases', where: { file: 'smtpd.conf', line: 1 } });
  assert.equal(c.listeners.length, 2, 'plus the implicit socket listener');
  assert.equal(c.listeners[0]!.interface, 'localhost');
  assert.equal(c.listeners[0]!.port, 25);
  assert.equal(c.listeners[1]!.kind, 'socket');
  assert.deepEqual(c.actions.get('local')!.method, { kind: 'maildir', path: undefined, junk: false });
  assert.equal(c.actions.get('local')!.alias, 'aliases');
  assert.deepEqual(c.actions.get('relay')!.relay, { backup: false, tls: 'opportunistic', srs: false });
  assert.deepEqual(c.rules.map((r) => r.criteria.map((x) => x.criterion.kind)), [['from-local', 'for-local'], ['from-local', 'for-any']]);
  assert.deepEqual(c.rules[1]!.decision, { kind: 'action', action: 'relay' });
  assert.equal(c.smtp.maxMessageSize, 35 * 1024 * 1024);
  assert.equal(c.queue.ttl, 4 * 86400);
  assert.deepEqual(c.bounce.warnIntervals, [4 * 3600]);
});

test('example 1: smarthost with auth', () => {
  const c = fixture('example1-smarthost');
  const out = c.actions.get('outbound')!;
  assert.equal(out.relay!.host, 'smtp+tls://bob@smtp.example.com');
  assert.equal(out.relay!.authTable, 'secrets');
  assert.equal(out.where.line, 7);
  assert.equal(c.rules[1]!.where.line, 11, 'the continuation line counts');
});

test('example 2: authenticated submission with a pki and an external mda', () => {
  const c = fixture('example2-auth-mda');
  assert.deepEqual(c.pkis.get('mail.example.com'), {
    name: 'mail.example.com', cert: '/etc/ssl/mail.example.com.crt', key: '/etc/ssl/private/mail.example.com.key', dhe: 'none',
    where: { file: 'smtpd.conf', line: 1 },
  });
  const egress = c.listeners[1]!;
  assert.equal(egress.tls, 'starttls');
  assert.deepEqual(egress.pki, ['mail.example.com']);
  assert.equal(egress.auth, 'required');
  assert.deepEqual(c.actions.get('mda_with_aliases')!.method, { kind: 'mda', command: '/path/to/mda -f -' });
  const domainRule = c.rules[1]!.criteria[1]!.criterion;
  assert.equal(domainRule.kind, 'for-domain');
  assert.deepEqual(c.tables.get((domainRule as { table: { table: string } }).table.table)!.inline, { kind: 'list', values: ['example.com'] });
  assert.deepEqual(c.rules[3]!.criteria.map((x) => x.criterion.kind), ['auth', 'from-any', 'for-any']);
});

test('example 3: dkimsign proc-exec filter on the socket and lo0', () => {
  const c = fixture('example3-dkimsign');
  const f = c.filters.get('dkimsign')!;
  assert.equal(f.kind, 'proc-exec');
  assert.deepEqual((f as { process: unknown }).process, {
    command: 'filter-dkimsign -d <domain> -s <selector> \t-k /etc/mail/dkim/private.key', user: '_dkimsign', group: '_dkimsign',
  });
  assert.deepEqual(c.listeners.map((l) => [l.kind, l.filter]), [['socket', 'dkimsign'], ['inet', 'dkimsign']]);
});

test('example 4: rspamd filter declaration', () => {
  const c = fixture('example4-rspamd');
  assert.equal((c.filters.get('rspamd') as { process: { command: string } }).process.command, 'filter-rspamd');
});

test('example 5: rejecting forged local senders from other relays', () => {
  const c = fixture('example5-forged-senders');
  const rule = c.rules[2]!;
  assert.deepEqual(rule.decision, { kind: 'reject' });
  assert.deepEqual(rule.criteria[0], { negate: true, criterion: { kind: 'from-src', table: { table: 'other-relays', regex: false } } });
  assert.equal(rule.criteria[1]!.criterion.kind, 'mail-from');
  assert.equal(rule.criteria[2]!.criterion.kind, 'for-any');
});

test('every directive and option of the grammar in one config', () => {
  const c = parse(`
ext = "203.0.113.5"
srs key "secret"
srs key backup "old"
srs ttl 5d
pki mx.example cert "/c.pem"
pki mx.example key "/k.pem"
pki mx.example dhe auto
ca mx.example cert "/ca.pem"
table users { alice = "$2b$10$x", bob = "$6$y" }
table nets { 10.0.0.0/8, "::1" }
table map file:/etc/mail/map
table sq sqlite:/etc/mail/sqlite.conf
table pw getpwnam
proc p1 "/usr/libexec/thing" user nobody group nogroup chroot "/var/empty"
filter f1 phase connect match !rdns regex "(?i)dyn" junk
filter f2 phase rcpt-to match rcpt-to <nets> reject "550 no"
filter f3 proc p1
filter f4 proc-exec "filter-x" protocol 0.6
filter f5 module "./dnsbl.js" zones zen.example threshold 2
filter ch chain { f1, f2 }
listen on $ext port submission tls-require verify pki mx.example ca mx.example auth <users> hostname mx.example senders <map> masquerade tag SUB filter ch received-auth mask-src
listen on 127.0.0.1 inet4 port 465 smtps pki mx.example auth-optional filter { f3, f4 } proxy-v2 no-dsn ciphers "HIGH" protocols "tlsv1.3"
listen on socket tag LOCAL
mda wrapper w "/usr/bin/wrap %{mda}"
action lm lmtp "/var/run/dovecot/lmtp" rcpt-to virtual <map> user vmail wrapper w ttl 2d
action md maildir "~/Maildir" junk userbase <pw>
action ex expand-only alias <map>
action fo forward-only
action rl relay host <map> tls no-verify auth <users> helo-src <map> src <nets> pki mx.example ca mx.example mail-from "@example.org" srs protocols "tlsv1.2" ciphers "HIGH" ttl 1h
action bk relay backup mx mx.example helo mx.example src "192.0.2.1"
action dm relay domain <map> tls
match from src <nets> for domain regex "^ex" action rl
match from rdns <map> helo <map> tag SUB action md
match from auth { alice } for rcpt-to <map> action lm
match from mail-from <map> mail-from <map> rcpt-to <map> auth <users> action ex
match from socket for any !tls action fo
match from rdns for local reject
queue compression
queue encryption 0123456789abcdef0123456789abcdef
queue ttl 3d
smtp ciphers "HIGH:!aNULL"
smtp limit max-mails 10 max-rcpt 20 max-sessions 500 max-sessions-per-address 7
smtp timeout 2m
smtp workers 3
smtp limit max-command-time 1m min-data-rate 1K
smtp ban auth-failures 5 in 10m for 1h
smtp max-message-size 10M
smtp sub-addr-delim "-"
mta limit for domain example.org max-conn-per-route 1 session-mail-max 2
mta limit task-hiwat 40 task-lowat 20 task-release 5
mta port 2525
mda limit max-session 5 max-session-per-user 2
scheduler limit max-inflight 100
bounce warn-interval 1h, 6h, 2d
admd mx.example
resolver "127.0.0.1:5353" "[::1]:53" "192.0.2.53"
stat listen on 127.0.0.1 port 9199
`, );
  assert.equal(c.listeners[0]!.interface, '203.0.113.5');
  assert.equal(c.listeners[0]!.port, 587);
  assert.equal(c.listeners[0]!.tls, 'require');
  assert.equal(c.listeners[0]!.tlsVerify, true);
  assert.deepEqual(c.listeners[0]!.senders, { table: 'map', masquerade: true });
  assert.equal(c.listeners[1]!.tls, 'smtps');
  assert.equal(c.listeners[1]!.family, 'inet4');
  assert.equal(c.listeners[1]!.auth, 'optional');
  assert.deepEqual(c.filters.get(c.listeners[1]!.filter!), { name: c.listeners[1]!.filter, kind: 'chain', filters: ['f3', 'f4'], where: c.listeners[1]!.where });
  assert.equal(c.listeners.filter((l) => l.kind === 'socket').length, 1, 'no implicit socket when one is configured');
  assert.deepEqual(c.tables.get('users')!.inline, { kind: 'map', entries: [['alice', '$2b$10$x'], ['bob', '$6$y']] });
  assert.deepEqual(c.tables.get('nets')!.inline, { kind: 'list', values: ['10.0.0.0/8', '::1'] });
  assert.equal(c.tables.get('sq')!.backend, 'sqlite');
  assert.deepEqual(c.actions.get('lm')!.method, { kind: 'lmtp', destination: '/var/run/dovecot/lmtp', rcptTo: true });
  assert.equal(c.actions.get('lm')!.ttl, 2 * 86400);
  assert.deepEqual(c.actions.get('md')!.method, { kind: 'maildir', path: '~/Maildir', junk: true });
  const rl = c.actions.get('rl')!.relay!;
  assert.equal(rl.tls, 'no-verify');
  assert.equal(rl.hostTable, 'map');
  assert.equal(rl.srcTable, 'nets');
  assert.equal(rl.srs, true);
  assert.deepEqual([c.actions.get('bk')!.relay!.backup, c.actions.get('bk')!.relay!.backupMx], [true, 'mx.example']);
  assert.equal(c.actions.get('dm')!.relay!.tls, 'required');
  assert.deepEqual(c.rules[0]!.criteria[1]!.criterion, { kind: 'for-domain', table: { table: c.rules[0]!.criteria[1]!.criterion.kind === 'for-domain' ? (c.rules[0]!.criteria[1]!.criterion as { table: { table: string } }).table.table : '', regex: true } });
  assert.deepEqual(c.rules[4]!.criteria[2], { negate: true, criterion: { kind: 'tls' } });
  assert.deepEqual(c.rules[5]!.criteria[0], { negate: false, criterion: { kind: 'from-rdns', table: undefined } });
  const f1 = c.filters.get('f1')!;
  assert.equal(f1.kind === 'builtin' && f1.conditions.length, 1);
  assert.equal(f1.kind === 'builtin' && f1.conditions[0]!.negate, true);
  assert.deepEqual(f1.kind === 'builtin' && f1.decision, { kind: 'junk' });
  assert.equal((c.filters.get('f4') as { protocol?: string }).protocol, '0.6');
  assert.deepEqual((c.filters.get('f5') as { options: string[] }).options, ['zones', 'zen.example', 'threshold', '2']);
  assert.deepEqual(c.queue, { compression: true, encryption: { key: '0123456789abcdef0123456789abcdef', from: 'config' }, ttl: 3 * 86400 });
  assert.deepEqual(c.smtp, {
    ciphers: 'HIGH:!aNULL', maxMails: 10, maxRcpt: 20, maxMessageSize: 10 * 1024 * 1024, subAddrDelim: '-',
    timeout: 120, workers: 3, maxSessions: 500, maxSessionsPerAddress: 7, maxCommandTime: 60, minDataRate: 1024,
    authBan: { failures: 5, window: 600, duration: 3600 },
  });
  assert.deepEqual(c.mta.limits[0]!.limits, { 'max-conn-per-route': 1, 'session-mail-max': 2 });
  // limit.c's relay task water marks, which mta/relay.ts applies
  assert.deepEqual(c.mta.limits[1]!.limits, { 'task-hiwat': 40, 'task-lowat': 20, 'task-release': 5 });
  assert.equal(c.mta.port, 2525);
  assert.equal(c.mdaLimits['max-session'], 5);
  assert.equal(c.schedulerLimits['max-inflight'], 100);
  assert.deepEqual(c.bounce.warnIntervals, [3600, 6 * 3600, 2 * 86400]);
  assert.deepEqual(c.srs, { key: 'secret', backupKey: 'old', ttl: 5 * 86400 });
  assert.equal(c.admd, 'mx.example');
  assert.deepEqual(c.resolvers, [{ address: '127.0.0.1', port: 5353 }, { address: '::1', port: 53 }, { address: '192.0.2.53', port: 53 }]);
  assert.equal(c.statListen!.port, 9199);
});

test('-D macros override the file; macros may stand for several words', () => {
  const text = 'p = "2525"\nopts = "port $p"\nlisten on 127.0.0.1 port $p\naction a relay\nmatch for any action a\n';
  assert.equal(parse(text).listeners[0]!.port, 2525);
  assert.equal(parseConfig(text, { file: 'x', macros: { p: '2626' } }).listeners[0]!.port, 2626);
  const multi = parse('o = "port 2600 tag T"\nlisten on 127.0.0.1 $o\naction a relay\nmatch for any action a\n');
  assert.deepEqual([multi.listeners[0]!.port, multi.listeners[0]!.tag], [2600, 'T']);
});

test('include splices a file in, with its own file name in errors', () => {
  const files: Record<string, string> = { '/etc/inc.conf': 'action a relay\nmatch for any action a\n', '/etc/bad.conf': '\nfrobnicate\n' };
  const readInclude = (p: string) => { if (!(p in files)) throw new Error('ENOENT'); return files[p]!; };
  const c = parseConfig('listen on lo\ninclude "/etc/inc.conf"\n', { file: 'main.conf', readInclude });
  assert.deepEqual(c.rules[0]!.where, { file: '/etc/inc.conf', line: 2 });
  assert.throws(() => parseConfig('include "/etc/bad.conf"\n', { file: 'main.conf', readInclude }), /^ConfigError: \/etc\/bad\.conf:2: syntax error: unknown directive: frobnicate$/m);
  assert.throws(() => parseConfig('\ninclude "/nope"\n', { file: 'main.conf', readInclude }), /main\.conf:2: cannot include \/nope/);
});
