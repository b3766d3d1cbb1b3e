/** Each kind of configuration error names its file and line, and reads like smtpd's. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

const OK_TAIL = 'action a relay\nmatch for any action a\n';

function error(text: string): { line: number; detail: string } {
  try {
    parseConfig(text, { file: 'f.conf' });
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.file, 'f.conf');
    assert.equal(err.message, `f.conf:${err.line}: ${err.detail}`);
    return { line: err.line, detail: err.detail };
  }
  assert.fail('no error for:\n' + text);
}

const CASES: [string, string, number, RegExp][] = [
  ['unknown directive', 'listen on lo\nfrobnicate 1\n' + OK_TAIL, 2, /unknown directive: frobnicate/],
  ['unknown action', 'listen on lo\n\nmatch for any action nope\n', 3, /undefined action: nope/],
  ['no match rule', 'listen on lo\naction a relay\n', 2, /no rules, nothing to do/],
  ['unknown table in a rule', OK_TAIL + 'match from src <nets> for any action a\n', 3, /undefined table: nets/],
  ['unknown table in an action', 'action l mbox alias <al>\nmatch for local action l\n', 1, /undefined table: al/],
  ['unknown pki', 'listen on lo tls pki nope\n' + OK_TAIL, 1, /undefined pki: nope/],
  ['pki without tls', 'pki x cert "/c"\npki x key "/k"\nlisten on lo pki x\n' + OK_TAIL, 3, /pki given without tls/],
  ['tls without pki', 'listen on lo smtps\n' + OK_TAIL, 1, /tls requires a pki/],
  ['pki without key', 'pki x cert "/c"\nlisten on lo tls pki x\n' + OK_TAIL, 1, /pki x: no key file/],
  ['unknown ca', 'action r relay ca nope\nmatch for any action r\n', 1, /undefined ca: nope/],
  ['unknown filter', 'listen on lo filter nope\n' + OK_TAIL, 1, /undefined filter: nope/],
  ['unknown filter in chain', 'filter c chain { x }\n' + OK_TAIL, 1, /undefined filter in chain: x/],
  ['unknown proc', 'filter f proc nope\n' + OK_TAIL, 1, /undefined proc: nope/],
  ['unknown wrapper', 'action l mda "x" wrapper w\nmatch for local action l\n', 1, /undefined mda wrapper: w/],
  ['duplicate table', 'table t { a }\ntable t { b }\n' + OK_TAIL, 2, /table already defined: t/],
  ['duplicate action', OK_TAIL + 'action a mbox\n', 3, /action already defined: a/],
  ['duplicate filter', 'filter f proc-exec "x"\n\nfilter f proc-exec "y"\n' + OK_TAIL, 3, /filter already defined: f/],
  ['duplicate listener', 'listen on lo port 25\nlisten on lo port 25\n' + OK_TAIL, 2, /duplicate listener/],
  ['service the backend cannot serve', 'table pw getpwnam\naction l mbox alias <pw>\nmatch for local action l\n', 2, /table pw \(getpwnam\) cannot be used for alias lookups/],
  ['passwd serves no alias', 'table pw passwd:/etc/passwd\naction l mbox alias <pw>\nmatch for local action l\n', 2, /table pw \(passwd\) cannot be used for alias lookups/],
  ['builtin table misused', 'action l mbox alias <localhost>\nmatch for local action l\n', 1, /table localhost cannot be used for alias/],
  // parse.y `table`: "invalid backend parameter for table" when the part after the colon is no path
  ['backend parameter that is no path', 'table t getpwnam:\n' + OK_TAIL, 1, /invalid backend parameter for table: t/],
  ['relative file table', 'table t file:etc/aliases\n' + OK_TAIL, 1, /invalid backend parameter for table: t/],
  ['port out of range', 'listen on lo port 70000\n' + OK_TAIL, 1, /invalid port: 70000/],
  ['port zero', 'listen on lo port 0\n' + OK_TAIL, 1, /invalid port: 0/],
  ['mta port', OK_TAIL + 'mta port -1\n', 3, /invalid port: -1/],
  ['size unit', 'smtp max-message-size 10X\n' + OK_TAIL, 1, /invalid size: 10X/],
  ['delay unit', 'queue ttl 4w\n' + OK_TAIL, 1, /invalid delay: 4w/],
  ['delay without a unit (delaytonum)', 'queue ttl 3600\n' + OK_TAIL, 1, /invalid delay: 3600/],
  // table_check_use(): a static table must have the shape its use takes
  ['a list where a mapping is wanted', 'table t { a, b }\naction l mbox alias <t>\nmatch for local action l\n', 2, /table "t" may not be used for alias lookups/],
  ['a mapping where a list is wanted', 'table d { a = b }\naction a relay\nmatch for domain <d> action a\n', 3, /table "d" may not be used for 'for' lookups/],
  ['a literal is a one-entry list', 'action l mbox virtual vmail\nmatch for local action l\n', 1, /table "<dynamic:0>" may not be used for virtual lookups/],
  ['auth without tls (create_if_listener)', 'listen on lo auth\n' + OK_TAIL, 1, /auth requires tls\/smtps/],
  ['srs ttl under a day', 'srs ttl 12h\n' + OK_TAIL, 1, /srs ttl delay is too short/],
  ['zero delay (delaytonum)', 'bounce warn-interval 0h\n' + OK_TAIL, 1, /invalid delay: 0h/],
  ['too many warn intervals', 'bounce warn-interval 1h, 2h, 3h, 4h, 5h\n' + OK_TAIL, 1, /4 at most/],
  ['exclusive tls modes', 'listen on lo tls smtps\n' + OK_TAIL, 1, /exclusive/],
  ['criterion twice', OK_TAIL + 'match from any from local for any action a\n', 3, /from given twice in one rule/],
  ['rule without decision', OK_TAIL + 'match from any for any\n', 3, /needs "action NAME" or "reject"/],
  ['undefined macro', 'listen on $nope\n' + OK_TAIL, 1, /macro 'nope' not defined/],
  ['unterminated string', '\nlisten on "lo\n' + OK_TAIL, 2, /unterminated quoted string/],
  ['unbalanced brace', 'table t { a\n' + OK_TAIL, 1, /unterminated \{/],
  ['junk at commit', 'filter f phase commit match rdns junk\n' + OK_TAIL, 1, /junk is not allowed at commit/],
  // parse.y: one condition per builtin filter, and only those the phase can know
  ['two builtin conditions', 'filter f phase connect match rdns fcrdns junk\n' + OK_TAIL, 1, /unknown filter decision: fcrdns/],
  ['condition unknown at the phase', 'filter f phase connect match helo { a.example } junk\n' + OK_TAIL, 1, /helo cannot be tested at phase connect/],
  ['rcpt-to at data', 'filter f phase data match rcpt-to <t> junk\n' + OK_TAIL, 1, /rcpt-to cannot be tested at phase data/],
  ['srs without key', 'action r relay srs\nmatch for any action r\n', 1, /srs requires an srs key/],
  ['auth without host', 'table s { a = b }\naction r relay auth <s>\nmatch for any action r\n', 2, /auth requires host/],
  ['auth before host (parse.y checks as it reads)', 'table s { a = b }\naction r relay auth <s> host "smtp://x"\nmatch for any action r\n', 2, /auth requires host \(given before it\)/],
  ['srs key declared below the action', 'action r relay srs\nsrs key "k"\nmatch for any action r\n', 1, /srs requires an srs key/],
  ['socket option', 'listen on socket port 25\n' + OK_TAIL, 1, /port is not allowed on listen on socket/],
  ['bad resolver', 'resolver "nameserver"\n' + OK_TAIL, 1, /invalid resolver address: nameserver/],
  ['relay option on a local action', 'action l mbox host "x"\nmatch for local action l\n', 1, /host is not an option of local actions/],
  ['error on a continued line', 'listen on lo \\\n  port 99999\n' + OK_TAIL, 1, /invalid port/],
  // issue 16, each refused as OpenSMTPD 7.8's parse.y refuses it
  ['-> separator (yylex knows = and =>)', 'table v { "@" -> "vmail" }\n' + OK_TAIL, 1, /"->" is not a separator/],
  ['keyword as a table reference', 'table t { a }\n\naction l mbox alias <userbase>\nmatch for local action l\n', 3, /<userbase>: "userbase" is a keyword/],
  ['keyword as a table name', 'table userbase { a = "1:1:/h" }\n' + OK_TAIL, 1, /"userbase" is a keyword: quote it/],
  ['keyword as an action name', 'action relay relay\nmatch for any action "relay"\n', 1, /"relay" is a keyword/],
  ['keyword as a literal', OK_TAIL + 'match from any for domain local action a\n', 3, /"local" is a keyword/],
  ['unquoted path', 'table t /etc/mail/t\n' + OK_TAIL, 1, /unexpected "\/" \(quote a value/],
  ['empty inline table', OK_TAIL + 'match from src { } for any action a\n', 3, /empty table/],
  // string_list / keyval_list / filter_list: a comma is never first, last or twice
  ['trailing comma', 'table t { a, b, }\n' + OK_TAIL, 1, /a comma without table entries after it/],
  ['leading comma', 'table t { , a }\n' + OK_TAIL, 1, /a comma without table entries before it/],
  ['double comma', 'table t { a,, b }\n' + OK_TAIL, 1, /a comma without table entries before it/],
  ['list and map mixed inline', OK_TAIL + 'match from src { a, b = c } for any action a\n', 3, /mixes list entries/],
  ['queue key not 32 bytes (crypto_setup)', 'queue encryption 0123456789abcdef\n' + OK_TAIL, 1, /invalid key for queue encryption: it must be 32 characters/],
  ['pki name not a host name (res_hnok)', 'pki my_cert cert "/c"\n' + OK_TAIL, 1, /not a valid domain name: my_cert/],
  ['mx is a keyword', 'pki mx cert "/c"\n' + OK_TAIL, 1, /"mx" is a keyword/],
  ['string runs to the end of the file', 'action a mda "x\nmatch for any action a\n', 1, /unterminated quoted string/],
  // parse.y reads in one pass: a name must be declared above the line that uses it
  ['table declared below its use', 'action l mbox alias <al>\ntable al { a = b }\nmatch for local action l\n', 1, /undefined table: al/],
  ['action declared below its use', 'match for any action a\naction a relay\n', 1, /undefined action: a/],
  ['pki declared below its listener', 'listen on lo tls pki mx.example\npki mx.example cert "/c"\npki mx.example key "/k"\n' + OK_TAIL, 1, /undefined pki: mx\.example/],
  ['filter declared below its listener', 'listen on lo filter f\nfilter f proc-exec "x"\n' + OK_TAIL, 1, /undefined filter: f/],
  ['one proc twice in a chain', 'proc p "x"\nfilter a proc p\nfilter b proc p\nfilter c chain { a, b }\n' + OK_TAIL, 4, /a proc may appear only once in a chain: p/],
  ['keyword as a macro name', 'hostname = "mx.example"\n' + OK_TAIL, 1, /"hostname" is a keyword, not a macro name/],
  ['number as a macro value', 'p = 2525\n' + OK_TAIL, 1, /macro needs one value/],
  ['number where a name stands', 'listen on lo tag 5\n' + OK_TAIL, 1, /5 is a number: quote it/],
  ['mta limit key smtpd does not know (limit_mta_set)', 'mta limit max-conn 5\n' + OK_TAIL, 1, /unknown limit: max-conn/],
  ['user given twice to a filter process', 'filter f proc-exec "x" user a user b\n' + OK_TAIL, 1, /user already specified/],
];

for (const [name, text, line, pattern] of CASES) {
  test(`error: ${name}`, () => {
    const e = error(text);
    assert.match(e.detail, pattern);
    assert.equal(e.line, line, `${e.line}: ${e.detail}`);
  });
}
