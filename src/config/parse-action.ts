/** `action NAME METHOD [options]`: delivery methods and their local or relay options. */
import type { Cursor } from './cursor.js';
import { tableName } from './parse-table.js';
import type { Action, ActionMethod, Config, RelayOptions } from './types.js';
import { parseDelay } from './values.js';

const LOCAL_OPTIONS = new Set(['alias', 'virtual', 'userbase', 'user', 'wrapper', 'ttl']);
const RELAY_OPTIONS = new Set([
  'backup', 'helo', 'helo-src', 'domain', 'host', 'pki', 'ca', 'srs', 'tls', 'auth', 'mail-from', 'src',
  'protocols', 'ciphers', 'filter', 'ttl',
]);

function parseMethod(c: Cursor): ActionMethod {
  const method = c.value('a delivery method');
  switch (method) {
    case 'mbox': case 'expand-only': case 'forward-only': case 'relay':
      return { kind: method };
    case 'maildir': {
      let path: string | undefined;
      // `maildir [path] [junk]`: a path is any value but a keyword (the next option)
      if (c.is('string') || (c.is('word') && !c.peekToken()!.keyword)) path = c.name('a maildir path');
      return { kind: 'maildir', path, junk: c.accept('junk') };
    }
    case 'mda':
      return { kind: 'mda', command: c.name('an mda command') };
    case 'lmtp': {
      const destination = c.name('an lmtp destination');
      return { kind: 'lmtp', destination, rcptTo: c.accept('rcpt-to') };
    }
    default:
      return c.fail(`syntax error: unknown delivery method: ${method}`);
  }
}

function relayOption(c: Cursor, opt: string, r: RelayOptions, config: Config): void {
  switch (opt) {
    case 'backup':
      r.backup = true;
      if (c.accept('mx')) r.backupMx = c.name('an mx name');
      break;
    case 'helo': r.helo = c.name('a helo name'); break;
    case 'helo-src': r.heloSrc = tableName(c, config); break;
    case 'domain': r.domainTable = tableName(c, config); break;
    case 'host':
      // one URL stays a URL; `<table>` or `{ ... }` is a table of them
      if (c.is('table') || c.is('{')) r.hostTable = tableName(c, config);
      else r.host = c.name('a relay url');
      break;
    case 'pki': r.pki = c.name('a pki name').toLowerCase(); break;
    case 'ca': r.ca = c.name('a ca name').toLowerCase(); break;
    // smtpd wants the key declared above the action, and a host (or domain) before auth
    case 'srs':
      if (!config.srs?.key) c.fail('srs requires an srs key (srs key ... above this action)');
      r.srs = true;
      break;
    case 'tls': r.tls = c.accept('no-verify') ? 'no-verify' : 'required'; break;
    case 'auth':
      if (!r.host && !r.hostTable && !r.domainTable) c.fail('auth requires host (given before it)');
      r.authTable = tableName(c, config);
      break;
    case 'mail-from': r.mailFrom = c.name('an address'); break;
    case 'src':
      if (c.is('table') || c.is('{')) r.srcTable = tableName(c, config);
      else r.src = c.name('a source address');
      break;
    case 'protocols': r.protocols = c.name('a protocol list'); break;
    case 'ciphers': r.ciphers = c.name('a cipher list'); break;
    // the smtp-out subsystem (mta_session.c's reports to filters) is not there to attach to
    case 'filter': return c.fail('relay filter is not supported by tsmtpd: the mta sends no smtp-out reports (docs/opensmtpd-differences.md)');
  }
}

function localOption(c: Cursor, opt: string, a: Action, config: Config): void {
  switch (opt) {
    case 'alias': a.alias = tableName(c, config); break;
    case 'virtual': a.virtual = tableName(c, config); break;
    case 'userbase': a.userbase = tableName(c, config); break;
    case 'user': a.user = c.name('a user name'); break;
    case 'wrapper':
      a.wrapper = c.name('a wrapper name');
      if (!config.mdaWrappers.has(a.wrapper)) c.fail(`undefined mda wrapper: ${a.wrapper}`);
      break;
  }
}

export function parseAction(c: Cursor, config: Config): void {
  const name = c.name('an action name');
  if (config.actions.has(name)) c.fail(`action already defined: ${name}`);
  const method = parseMethod(c);
  const a: Action = { name, method, where: c.where };
  const relay = method.kind === 'relay';
  if (relay) a.relay = { backup: false, tls: 'opportunistic', srs: false };
  const seen = new Set<string>();
  while (!c.done()) {
    const opt = c.value('an action option');
    if (seen.has(opt)) c.fail(`syntax error: ${opt} given twice`);
    seen.add(opt);
    if (opt === 'ttl') {
      const text = c.name('a delay');
      const ttl = parseDelay(text);
      if (ttl === null) c.fail(`invalid delay: ${text}`);
      a.ttl = ttl;
    } else if (relay && RELAY_OPTIONS.has(opt)) relayOption(c, opt, a.relay!, config);
    else if (!relay && LOCAL_OPTIONS.has(opt)) localOption(c, opt, a, config);
    else c.fail(`syntax error: ${opt} is not an option of ${relay ? 'relay' : 'local'} actions`);
  }
  checkAction(c, a);
  config.actions.set(name, a);
}

function checkAction(c: Cursor, a: Action): void {
  if (a.alias && a.virtual) c.fail('alias and virtual are exclusive');
  const k = a.method.kind;
  if (a.user && (k === 'mbox' || k === 'expand-only' || k === 'forward-only')) c.fail(`user is not allowed with ${k}`);
  const r = a.relay;
  if (!r) return;
  if ((r.host || r.hostTable) && r.domainTable) c.fail('host and domain are exclusive');
  if (r.backup && (r.host || r.hostTable || r.domainTable)) c.fail('backup is exclusive with host and domain');
}
