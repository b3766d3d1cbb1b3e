/**
 * The smtpd-filters(7) line codec: what a filter writes is parsed strictly and never throws,
 * what tsmtpd writes is one line with the fields where each version puts them.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { filterLine, handshake, parseOutput, reportLine, versionAtLeast } from '../../src/filter/protocol.js';

const hex16 = fc.stringMatching(/^[0-9a-f]{16}$/);

describe('smtpd-filters protocol codec', () => {
  it('parses any line a filter writes without throwing, and only known shapes as valid', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.constantFrom('0.4', '0.7'), (line, version) => {
        const out = parseOutput(line, version);
        if (out.kind === 'result') assert.ok(line.startsWith('filter-result|'));
        if (out.kind === 'dataline') assert.ok(line.startsWith('filter-dataline|'));
      }),
    );
  });

  it('reads session and token in the order of the version spoken', () => {
    fc.assert(
      fc.property(hex16, hex16, (session, token) => {
        assert.deepEqual(parseOutput(`filter-result|${session}|${token}|proceed`, '0.7'), { kind: 'result', session, token, decision: 'proceed', param: '' });
        assert.deepEqual(parseOutput(`filter-result|${token}|${session}|proceed`, '0.4'), { kind: 'result', session, token, decision: 'proceed', param: '' });
      }),
    );
  });

  it('keeps a `|` inside the last field, and refuses decisions without what they need', () => {
    const s = '7641df9771b4ed00';
    const t = '1ef1c203cc576e5d';
    assert.deepEqual(parseOutput(`filter-dataline|${s}|${t}|a|b||c`, '0.7'), { kind: 'dataline', session: s, token: t, line: 'a|b||c' });
    assert.deepEqual(parseOutput(`filter-result|${s}|${t}|reject|550 no | really`, '0.7'), { kind: 'result', session: s, token: t, decision: 'reject', param: '550 no | really' });
    assert.equal(parseOutput(`filter-result|${s}|${t}|reject|nope`, '0.7').kind, 'invalid');
    assert.equal(parseOutput(`filter-result|${s}|${t}|rewrite`, '0.7').kind, 'invalid');
    assert.equal(parseOutput(`filter-result|${s}|${t}|accept`, '0.7').kind, 'invalid');
    assert.equal(parseOutput(`filter-result|zz|${t}|proceed`, '0.7').kind, 'invalid');
    assert.deepEqual(parseOutput('register|report|smtp-in|*', '0.7'), { kind: 'register', stream: 'report', subsystem: 'smtp-in', event: '*' });
    assert.deepEqual(parseOutput('register|ready', '0.7'), { kind: 'register-ready' });
    assert.equal(parseOutput('register|filter|smtp-in', '0.7').kind, 'invalid');
  });

  it('writes every line as one line, with `|` only as separators before the last field', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 30 }), { minLength: 1, maxLength: 4 }), (params) => {
        const line = reportLine('0.7', 1_576_146_008_006, 'abcdef0123456789', 'tx-rcpt', params);
        assert.ok(!/[\r\n]/.test(line));
        const fields = line.split('|');
        assert.deepEqual(fields.slice(0, 6), ['report', '0.7', '1576146008.006000', 'smtp-in', 'tx-rcpt', 'abcdef0123456789']);
        // the leading fields can be split back exactly; the last takes the rest
        const lead = params.slice(0, -1).map((p) => p.replace(/[\r\n]/g, ' ').replace(/\|/g, ' '));
        assert.deepEqual(fields.slice(6, 6 + lead.length), lead);
      }),
    );
  });

  it('always gives a filter request its parameter field, empty for data and commit', () => {
    assert.equal(filterLine('0.7', 1000, 'commit', 'abcdef0123456789', '0123456789abcdef', []), 'filter|0.7|1.000000|smtp-in|commit|abcdef0123456789|0123456789abcdef|');
    assert.equal(filterLine('0.7', 1000, 'connect', 's', 't', ['host', '1.2.3.4']), 'filter|0.7|1.000000|smtp-in|connect|s|t|host|1.2.3.4');
  });

  it('moves the fields older versions ordered differently', () => {
    assert.match(reportLine('0.7', 0, 's', 'link-auth', ['pass', 'alice']), /\|link-auth\|s\|pass\|alice$/);
    assert.match(reportLine('0.6', 0, 's', 'link-auth', ['pass', 'alice']), /\|link-auth\|s\|alice\|pass$/);
    assert.match(reportLine('0.6', 0, 's', 'tx-mail', ['m', 'ok', 'a@b']), /\|tx-mail\|s\|m\|ok\|a@b$/);
    assert.match(reportLine('0.5', 0, 's', 'tx-rcpt', ['m', 'ok', 'a@b']), /\|tx-rcpt\|s\|m\|a@b\|ok$/);
    assert.match(reportLine('0.4', 0, 's', 'tx-mail', ['m', 'ok', 'a@b']), /\|tx-mail\|s\|m\|a@b\|ok$/);
    assert.equal(versionAtLeast('0.10', '0.7'), true);
    assert.equal(versionAtLeast('0.6', '0.7'), false);
  });

  it('announces itself with the handshake of smtpd-filters(7)', () => {
    assert.deepEqual(handshake({ smtpdVersion: '7.8.0', version: '0.7', sessionTimeoutSec: 300 }), [
      'config|smtpd-version|7.8.0', 'config|protocol|0.7', 'config|smtp-session-timeout|300', 'config|subsystem|smtp-in', 'config|ready',
    ]);
  });
});
