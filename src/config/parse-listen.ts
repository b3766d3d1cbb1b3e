/** `listen on ...`: the listener grammar of smtpd.conf(5), socket and network forms. */
import type { Cursor } from './cursor.js';
import { declaredFilter, filterNames } from './parse-filter.js';
import { startsTable, tableName } from './parse-table.js';
import type { Config, Listener, TlsMode } from './types.js';
import { parsePort } from './values.js';

const SOCKET_OPTIONS = new Set(['filter', 'mask-src', 'no-dsn', 'tag']);

/** `filter NAME` or an anonymous chain `filter { a, b }`, which becomes `<dynchain:N>`. */
export function filterRef(c: Cursor, config: Config): string {
  if (!c.is('{')) {
    const name = c.name('a filter name');
    declaredFilter(c, config, name);
    return name;
  }
  const names = filterNames(c, config);
  const name = `<dynchain:${config.filters.size}>`;
  config.filters.set(name, { name, kind: 'chain', filters: names, where: c.where });
  return name;
}

/** pki and ca are found when the listener is made, as smtpd's config_listener() finds them. */
function declared(c: Cursor, what: string, name: string, map: Map<string, unknown>): string {
  if (!map.has(name)) c.fail(`undefined ${what}: ${name}`);
  return name;
}

function setTls(c: Cursor, l: Listener, mode: TlsMode): void {
  if (l.tls !== 'none') c.fail('syntax error: tls, tls-require and smtps are exclusive');
  l.tls = mode;
  if (mode !== 'starttls' && c.accept('verify')) l.tlsVerify = true;
}

export function parseListen(c: Cursor, config: Config): void {
  c.expect('on');
  const socket = c.accept('socket');
  const l: Listener = {
    kind: socket ? 'socket' : 'inet',
    interface: socket ? 'socket' : c.name('an interface, address or host'),
    family: 'any', port: 0, tls: 'none', tlsVerify: false, pki: [], auth: 'none',
    maskSrc: false, noDsn: false, proxyV2: false, receivedAuth: false, where: c.where,
  };
  let port: number | undefined;
  const seen = new Set<string>();
  while (!c.done()) {
    const opt = c.value('a listener option');
    if (socket && !SOCKET_OPTIONS.has(opt)) c.fail(`syntax error: ${opt} is not allowed on listen on socket`);
    if (seen.has(opt) && opt !== 'pki') c.fail(`syntax error: ${opt} given twice`);
    seen.add(opt);
    switch (opt) {
      case 'inet4': case 'inet6':
        if (l.family !== 'any') c.fail('syntax error: inet4 and inet6 are exclusive');
        l.family = opt;
        break;
      case 'port': {
        const text = c.value('a port');
        const p = parsePort(text);
        if (p === null) c.fail(`invalid port: ${text}`);
        port = p;
        break;
      }
      case 'tls': setTls(c, l, 'starttls'); break;
      case 'tls-require': setTls(c, l, 'require'); break;
      case 'smtps': setTls(c, l, 'smtps'); break;
      case 'pki':
        l.pki.push(declared(c, 'pki', c.name('a pki name').toLowerCase(), config.pkis));
        if (l.pki.length > 32) c.fail('too many pki (32 at most)');
        break;
      case 'ca': l.ca = declared(c, 'ca', c.name('a ca name').toLowerCase(), config.cas); break;
      case 'ciphers': l.ciphers = c.name('a cipher list'); break;
      case 'protocols': l.protocols = c.name('a protocol list'); break;
      case 'auth': case 'auth-optional':
        if (l.auth !== 'none') c.fail('syntax error: auth and auth-optional are exclusive');
        l.auth = opt === 'auth' ? 'required' : 'optional';
        if (startsTable(c)) l.authTable = tableName(c, config);
        break;
      case 'hostname': l.hostname = c.name('a host name'); break;
      case 'hostnames': l.hostnames = tableName(c, config); break;
      case 'mask-src': l.maskSrc = true; break;
      case 'no-dsn': l.noDsn = true; break;
      case 'senders': l.senders = { table: tableName(c, config), masquerade: c.accept('masquerade') }; break;
      case 'tag': {
        const tag = c.name('a tag');
        // SMTPD_TAG_SIZE is 32, NUL included
        if (tag.length >= 32) c.fail('tag name too long');
        l.tag = tag;
        break;
      }
      case 'filter': l.filter = filterRef(c, config); break;
      case 'proxy-v2': l.proxyV2 = true; break;
      case 'received-auth': l.receivedAuth = true; break;
      default: c.fail(`syntax error: unknown listener option: ${opt}`);
    }
  }
  if (l.tls !== 'none' && l.pki.length === 0 && !socket) c.fail('listener with tls requires a pki');
  // create_if_listener(): AUTH is never offered in clear, so a listener would refuse everyone
  if (l.auth !== 'none' && l.tls === 'none' && !socket) c.fail('invalid listen option: auth requires tls/smtps');
  if (l.tls === 'none' && l.pki.length > 0) c.fail('pki given without tls, tls-require or smtps');
  l.port = port ?? (l.tls === 'smtps' ? 465 : 25);
  config.listeners.push(l);
}
