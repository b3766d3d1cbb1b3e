/**
 * OpenSMTPD's reserved words (parse.y `lookup()`, 7.8). Its lexer turns a bare word from this list
 * into a keyword token, so it can never stand where a name or value is expected: `table userbase
 * ...`, `<userbase>` or `action relay relay` are syntax errors there, and quoting (`"relay"`) is
 * the way to use such a word as a name. tsmtpd refuses the same words in the same places.
 */
export const KEYWORDS: ReadonlySet<string> = new Set([
  'action', 'admd', 'alias', 'any', 'auth', 'auth-optional', 'backup', 'bounce', 'bypass', 'ca', 'cert', 'chain',
  'chroot', 'ciphers', 'commit', 'compression', 'connect', 'data', 'data-line', 'dhe', 'disconnect', 'domain', 'ehlo',
  'encryption', 'expand-only', 'fcrdns', 'filter', 'for', 'forward-only', 'from', 'group', 'helo', 'helo-src', 'host',
  'hostname', 'hostnames', 'include', 'inet4', 'inet6', 'junk', 'key', 'limit', 'listen', 'lmtp', 'local', 'mail-from',
  'maildir', 'mask-src', 'masquerade', 'match', 'max-deferred', 'max-message-size', 'mbox', 'mda', 'mta', 'mx',
  'no-dsn', 'no-verify', 'noop', 'on', 'phase', 'pki', 'port', 'proc', 'proc-exec', 'protocols', 'proxy-v2', 'queue',
  'quit', 'rcpt-to', 'rdns', 'received-auth', 'recipient', 'regex', 'reject', 'relay', 'report', 'rewrite', 'rset',
  'scheduler', 'senders', 'smtp', 'smtp-in', 'smtp-out', 'smtps', 'socket', 'src', 'srs', 'sub-addr-delim', 'table',
  'tag', 'tagged', 'tls', 'tls-require', 'ttl', 'user', 'userbase', 'verify', 'virtual', 'warn-interval', 'wrapper',
]);

export function isKeyword(word: string): boolean {
  return KEYWORDS.has(word);
}
