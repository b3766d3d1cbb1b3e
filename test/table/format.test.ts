/** table(5) text, netaddr matching and aliases(5) values: the pure parsers behind every table, fed hostile text too. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseAliasTarget, parseAliasValue } from '../../src/table/alias.js';
import { parseTableText, splitEntry, TableFormatError } from '../../src/table/file-format.js';
import { addressBytes, matchNetaddr } from '../../src/table/netaddr.js';

function formatError(text: string, line: number): void {
  assert.throws(() => parseTableText(text, 't.txt'), (err: unknown) => err instanceof TableFormatError && err.line === line && err.message.startsWith(`t.txt:${line}: `));
}

test('a list: comments and blank lines skipped, keys lowercased, duplicates once', () => {
  assert.deepEqual(parseTableText('# head\n\nalpha\n  Beta  \r\n#gamma\nALPHA\n', 't'), { kind: 'list', keys: ['alpha', 'beta'] });
  assert.deepEqual(parseTableText('', 't'), { kind: 'map', entries: new Map() }, 'an empty file is a mapping (table_static_priv_load)');
});

test('a mapping: the key ends at the first blank or colon, the value keeps its case', () => {
  const t = parseTableText('Root  bob, Alice\nmailer-daemon: root\npostmaster:\tRoot\n', 't');
  assert.equal(t.kind, 'map');
  if (t.kind === 'map') assert.deepEqual([...t.entries], [['root', 'bob, Alice'], ['mailer-daemon', 'root'], ['postmaster', 'Root']]);
});

test('[v6] keys keep their colons and prefix length', () => {
  assert.deepEqual(splitEntry('[2001:DB8::]/32 net6'), { key: '[2001:db8::]/32', value: 'net6' });
  assert.deepEqual(splitEntry('[::1]'), { key: '[::1]', value: '' });
  assert.deepEqual(parseTableText('[::1]\n[2001:db8::]/32\n10.0.0.0/8\n', 't'), { kind: 'list', keys: ['[::1]', '[2001:db8::]/32', '10.0.0.0/8'] });
});

test('# @list forces a list; in a list the whole line is the key (parse_table_line), in a map a key alone is an error', () => {
  assert.deepEqual(parseTableText('# @list\nfoo\n', 't'), { kind: 'list', keys: ['foo'] });
  assert.deepEqual(parseTableText('# @list\nfoo bar\n', 't'), { kind: 'list', keys: ['foo bar'] });
  assert.deepEqual(parseTableText('198.51.100.0/24\n2001:DB8:1::/48\n', 't'), { kind: 'list', keys: ['198.51.100.0/24', '2001:db8:1::/48'] });
  assert.deepEqual(splitEntry('key::value'), { key: 'key', value: ':value' }, 'one delimiter goes, not two');
  formatError('a b\n\n#x\nc\n', 4);
  formatError('ok\n:value\n', 2);
  formatError('ok\nbad\x00\n', 2);
});

test('property: any text is a table or a TableFormatError', () => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom('a', 'B', ' ', ':', '\n', '\r', '#', '@', '[', ']', '/', '\x00', 'list', '\t'), maxLength: 60 }), (text) => {
      try {
        const t = parseTableText(text, 't');
        const keys = t.kind === 'list' ? t.keys : [...t.entries.keys()];
        for (const k of keys) assert.ok(k !== '' && k === k.toLowerCase());
      } catch (err) {
        assert.ok(err instanceof TableFormatError, String(err));
      }
    }),
    { numRuns: 2000 },
  );
});

test('addressBytes: v4, v6, embedded and mapped forms', () => {
  assert.deepEqual([...addressBytes('192.0.2.1')!], [192, 0, 2, 1]);
  assert.deepEqual([...addressBytes('[::ffff:192.0.2.1]')!], [192, 0, 2, 1]);
  assert.equal(addressBytes('2001:db8::1')!.toString('hex'), '20010db8000000000000000000000001');
  assert.equal(addressBytes('[IPv6:::1]')!.toString('hex'), '00000000000000000000000000000001');
  assert.equal(addressBytes('::1.2.3.4')!.toString('hex'), '00000000000000000000000001020304');
  for (const bad of ['', 'local', '1.2.3', '256.0.0.1', 'gggg::1', '[]']) assert.equal(addressBytes(bad), null, bad);
});

test('matchNetaddr: exact, CIDR, v6, v4-mapped and local', () => {
  const cases: [string, string, boolean][] = [
    ['192.0.2.1', '192.0.2.1', true],
    ['192.0.2.1', '192.0.2.2', false],
    ['10.0.0.0/8', '10.255.1.2', true],
    ['10.0.0.0/8', '11.0.0.1', false],
    ['192.0.2.0/31', '192.0.2.1', true],
    ['192.0.2.0/31', '192.0.2.2', false],
    ['0.0.0.0/0', '203.0.113.9', true],
    ['0.0.0.0/0', '2001:db8::1', false],
    ['::/0', '2001:db8::1', true],
    ['[2001:db8::]/32', '2001:db8:ffff::1', true],
    ['[2001:db8::]/32', '2001:db9::1', false],
    ['[::1]', '0:0:0:0:0:0:0:1', true],
    ['10.0.0.0/8', '::ffff:10.1.2.3', true],
    ['[::ffff:10.0.0.1]', '10.0.0.1', true],
    ['local', 'local', true],
    ['local', '127.0.0.1', false],
    ['127.0.0.0/8', 'local', false],
    ['10.0.0.0/33', '10.0.0.1', false],
    ['10.0.0.0/x', '10.0.0.1', false],
    ['10.0.0.0/-1', '10.0.0.1', false],
    ['/8', '10.0.0.1', false],
    ['garbage', '10.0.0.1', false],
  ];
  for (const [entry, addr, want] of cases) assert.equal(matchNetaddr(entry, addr), want, `${entry} vs ${addr}`);
});

test('matchNetaddr: a prefix that is not a plain number never widens the entry to everything', () => {
  // '10.0.0.0/' once read as /0 (Number('') is 0), matching every IPv4 client
  for (const entry of ['10.0.0.0/', '10.0.0.0/ 8', '10.0.0.0/0x8', '10.0.0.0/8.0', '10.0.0.0/1e1']) {
    assert.equal(matchNetaddr(entry, '192.0.2.1'), false, entry);
  }
});

const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255));
const toInt = (a: number[]) => ((a[0]! << 24) | (a[1]! << 16) | (a[2]! << 8) | a[3]!) >>> 0;

test('property: IPv4 CIDR matching agrees with integer masks, and the mapped form with the plain one', () => {
  fc.assert(
    fc.property(v4, v4, fc.integer({ min: 0, max: 32 }), (net, addr, bits) => {
      const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
      const want = ((toInt(net) & mask) >>> 0) === ((toInt(addr) & mask) >>> 0);
      const entry = `${net.join('.')}/${bits}`;
      assert.equal(matchNetaddr(entry, addr.join('.')), want);
      assert.equal(matchNetaddr(entry, `::ffff:${addr.join('.')}`), want);
    }),
    { numRuns: 2000 },
  );
});

test('alias values: every kind of target', () => {
  assert.deepEqual(parseAliasValue('bob, Alice@Example.com,|/usr/bin/vacation bob , /var/mail/x, :include:/etc/mail/list, error:550 5.1.1 No such user'), [
    { kind: 'username', value: 'bob' },
    { kind: 'address', value: 'Alice@Example.com' },
    { kind: 'command', value: '/usr/bin/vacation bob' },
    { kind: 'file', value: '/var/mail/x' },
    { kind: 'include', value: '/etc/mail/list' },
    { kind: 'error', code: 550, enhanced: '5.1.1', text: 'No such user' },
  ]);
  assert.deepEqual(parseAliasValue('"|/bin/cmd a, b", \\bob'), [{ kind: 'command', value: '/bin/cmd a, b' }, { kind: 'username', value: 'bob' }]);
  assert.deepEqual(parseAliasTarget('error:421'), { kind: 'error', code: 421, text: 'Error' });
});

test('alias values: hostile items are skipped, never guessed at', () => {
  assert.deepEqual(parseAliasValue(''), []);
  assert.deepEqual(parseAliasValue(' , ,,'), []);
  assert.deepEqual(parseAliasValue('a b, ok'), [{ kind: 'username', value: 'ok' }]);
  assert.deepEqual(parseAliasValue('bob\r\nX-Injected: 1, ok'), [{ kind: 'username', value: 'ok' }]);
  assert.deepEqual(parseAliasValue('|cmd\x00arg'), []);
  assert.deepEqual(parseAliasValue('"unterminated, quote'), []);
});

test('property: alias parsing never throws and never yields a control character', () => {
  fc.assert(
    fc.property(fc.string({ unit: fc.oneof(fc.constantFrom(',', '"', '|', '/', ':include:', 'error:', '550 ', '\\', '@', ' ', '\t', '\n', '\x00', 'x'), fc.string({ unit: 'binary', maxLength: 2 })), maxLength: 30 }), (text) => {
      for (const t of parseAliasValue(text)) {
        const v = t.kind === 'error' ? t.text : t.value;
        assert.doesNotMatch(v, /[\x00-\x08\x0a-\x1f\x7f]/);
      }
    }),
    { numRuns: 2000 },
  );
});
