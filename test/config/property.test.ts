/** Any byte string given as a config yields a Config or a located ConfigError: never another throw. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

function check(text: string): void {
  try {
    parseConfig(text, { file: 'p.conf', readInclude: () => text });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const lines = text.split('\n').length;
    assert.ok(err.line >= 1 && err.line <= lines + 1, `line ${err.line} of ${lines}: ${err.message}`);
  }
}

const WORDS = [
  'listen', 'on', 'socket', 'lo', 'port', '25', 'tls', 'pki', 'auth', 'action', 'relay', 'mbox', 'maildir', 'match',
  'from', 'for', 'any', 'local', 'src', 'domain', 'reject', 'table', 'filter', 'phase', 'connect', 'chain',
  'proc-exec', 'include', 'queue', 'ttl', '4d', 'smtp', 'limit', 'max-rcpt', 'mta', 'bounce', 'warn-interval',
  '{', '}', ',', '=', '->', '!', '<t>', '"x y"', '$m', 'm', '\\\n', '\n', '#c\n', 'regex', 'resolver', '"[::1]:53"',
];

test('property: arbitrary text never crashes the parser', () => {
  fc.assert(fc.property(fc.string({ maxLength: 400 }), check), { numRuns: 2000 });
});

test('property: arbitrary bytes decoded as latin1 never crash the parser', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (b) => check(Buffer.from(b).toString('latin1'))), { numRuns: 1000 });
});

test('property: soups of grammar tokens yield a Config or a located error', () => {
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...WORDS), { maxLength: 60 }), (words) => check(words.join(' '))),
    { numRuns: 3000 },
  );
});
