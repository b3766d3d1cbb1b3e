/**
 * The global settings of smtpd.conf: pki, ca, queue, smtp, mta, mda, scheduler, bounce, srs,
 * admd, plus tsmtpd's `resolver` and `stat listen on`.
 */
import type { Cursor } from './cursor.js';
import type { Config } from './types.js';
import { parseCount, parseDelay, parseHostPort, parsePort, parseSize } from './values.js';

function count(c: Cursor, what: string): number {
  const text = c.value(what);
  const n = parseCount(text);
  if (n === null) c.fail(`invalid number: ${text}`);
  return n;
}

function delay(c: Cursor, unitless = false): number {
  const text = c.value('a delay');
  const d = parseDelay(text, unitless);
  if (d === null) c.fail(`invalid delay: ${text} (a number with s, m, h or d)`);
  return d;
}

/**
 * `key N key N ...` limit lists (`mda limit`, `scheduler limit`, `mta limit`). `refused`: keys
 * OpenSMTPD knows that tsmtpd does not act on, refused by name rather than parsed and ignored
 * (docs/opensmtpd-differences.md says why).
 */
function limits(c: Cursor, known: string[], into: Record<string, number>, refused: Record<string, string> = {}): void {
  if (c.done()) c.fail('syntax error: limit needs at least one key and value');
  while (!c.done()) {
    const key = c.value('a limit name');
    if (Object.hasOwn(refused, key)) c.fail(`limit ${key} is not supported by tsmtpd: ${refused[key]} (docs/opensmtpd-differences.md)`);
    if (!known.includes(key)) c.fail(`unknown limit: ${key}`);
    into[key] = count(c, `a value for ${key}`);
  }
}

/**
 * pki and ca names are host names, or `*` for the catch-all, lowercased (as smtpd's pki and ca
 * rules check with res_hnok()).
 */
export function certName(c: Cursor, what: string): string {
  const name = c.name(what);
  if (name !== '*' && !isHostname(name)) c.fail(`not a valid domain name: ${name}`);
  return name.toLowerCase();
}

function isHostname(name: string): boolean {
  const label = '[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?';
  return name.length <= 253 && new RegExp(`^${label}(?:\\.${label})*\\.?$`).test(name);
}

export function parsePki(c: Cursor, config: Config): void {
  const name = certName(c, 'a pki name');
  const pki = config.pkis.get(name) ?? { name, dhe: 'none' as const, where: c.where };
  const what = c.value('cert, key or dhe');
  if (what === 'cert') pki.cert = c.name('a certificate file');
  else if (what === 'key') pki.key = c.name('a key file');
  else if (what === 'dhe') {
    const v = c.name('none, auto or legacy').toLowerCase();
    if (v !== 'none' && v !== 'auto' && v !== 'legacy') c.fail(`invalid DHE keyword: ${v}`);
    // libtls' legacy is a 1024-bit group (Logjam-weak), which OpenSSL's default security level refuses
    if (v === 'legacy') c.fail('pki dhe legacy is not supported by tsmtpd (1024-bit DH): use auto or none (docs/opensmtpd-differences.md)');
    pki.dhe = v;
  } else c.fail(`syntax error: unknown pki option: ${what}`);
  c.end();
  config.pkis.set(name, pki);
}

export function parseCa(c: Cursor, config: Config): void {
  const name = certName(c, 'a ca name');
  c.expect('cert');
  config.cas.set(name, { name, cert: c.name('a certificate file'), where: c.where });
  c.end();
}

/**
 * `queue encryption [KEY]` (parse.y): no key, the parent asks for it at start; `stdin` or `-`
 * (any case), it reads a line of standard input (daemon/queue-key.ts). A key written here must be
 * 32 octets as written (`openssl rand -hex 16`), which crypto_setup() checks under `smtpd -n`.
 */
function queueKey(c: Cursor): NonNullable<Config['queue']['encryption']> {
  if (c.done()) return { from: 'prompt' };
  const key = c.name('a key');
  if (key.toLowerCase() === 'stdin' || key === '-') return { from: 'stdin' };
  if (Buffer.byteLength(key) !== QUEUE_KEY_BYTES) {
    c.fail(`invalid key for queue encryption: it must be ${QUEUE_KEY_BYTES} characters (openssl rand -hex 16), not ${Buffer.byteLength(key)}`);
  }
  return { key, from: 'config' };
}

export const QUEUE_KEY_BYTES = 32;

export function parseQueue(c: Cursor, config: Config): void {
  const what = c.value('compression, encryption, ttl, url, node or lease');
  if (what === 'compression') config.queue.compression = true;
  else if (what === 'encryption') config.queue.encryption = queueKey(c);
  else if (what === 'ttl') config.queue.ttl = delay(c);
  else if (what === 'url') config.queue.url = c.name('a postgresql:// url');
  else if (what === 'node') config.queue.node = c.name('a node name');
  else if (what === 'lease') config.queue.lease = delay(c);
  else c.fail(`syntax error: unknown queue option: ${what}`);
  c.end();
}

export function parseSmtp(c: Cursor, config: Config): void {
  const what = c.value('an smtp option');
  if (what === 'ciphers') config.smtp.ciphers = c.name('a cipher list');
  else if (what === 'limit') smtpLimits(c, config);
  else if (what === 'ban') {
    // tsmtpd addition: `smtp ban auth-failures N in DELAY for DELAY`
    c.expect('auth-failures');
    const failures = count(c, 'a number of failures');
    if (failures < 1) c.fail('smtp ban auth-failures needs at least 1 failure');
    c.expect('in');
    const window = delay(c, true);
    c.expect('for');
    const duration = delay(c, true);
    if (window < 1 || duration < 1) c.fail('smtp ban delays must be at least 1s');
    config.smtp.authBan = { failures, window, duration };
  } else if (what === 'workers') {
    const text = c.value('a number of smtp worker processes');
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1 || n > 256) c.fail(`smtp workers must be a whole number from 1 to 256: ${text}`);
    config.smtp.workers = n;
  } else if (what === 'timeout') {
    const seconds = delay(c, true);
    if (seconds < 1) c.fail('smtp timeout must be at least 1s');
    config.smtp.timeout = seconds;
  } else if (what === 'max-message-size') {
    const text = c.value('a size');
    const size = parseSize(text);
    if (size === null) c.fail(`invalid size: ${text} (a number with K, M or G)`);
    config.smtp.maxMessageSize = size;
  } else if (what === 'sub-addr-delim') {
    const d = c.name('a character');
    if (d.length !== 1 || d === '@' || !/[\x21-\x7e]/.test(d)) c.fail(`invalid sub-addr-delim: ${d}`);
    config.smtp.subAddrDelim = d;
  } else c.fail(`syntax error: unknown smtp option: ${what}`);
  c.end();
}

const SMTP_COUNT_LIMITS = { 'max-mails': 'maxMails', 'max-rcpt': 'maxRcpt', 'max-sessions': 'maxSessions', 'max-sessions-per-address': 'maxSessionsPerAddress' } as const;

/** `smtp limit KEY VALUE ...`: counts, plus tsmtpd's max-command-time (a delay) and min-data-rate (a size per second). */
function smtpLimits(c: Cursor, config: Config): void {
  if (c.done()) c.fail('syntax error: limit needs at least one key and value');
  const s = config.smtp;
  while (!c.done()) {
    const key = c.value('a limit name');
    if (key === 'max-command-time') {
      s.maxCommandTime = delay(c, true);
      if (s.maxCommandTime < 1) c.fail('max-command-time must be at least 1s');
    } else if (key === 'min-data-rate') {
      const text = c.value('a size per second');
      const rate = parseSize(text);
      if (rate === null || rate < 1) c.fail(`invalid min-data-rate: ${text} (octets per second, at least 1, with K or M)`);
      s.minDataRate = rate;
    } else if (Object.hasOwn(SMTP_COUNT_LIMITS, key)) {
      s[SMTP_COUNT_LIMITS[key as keyof typeof SMTP_COUNT_LIMITS]] = count(c, `a value for ${key}`);
    } else c.fail(`unknown limit: ${key}`);
  }
}

/** The `mta limit` keys the mta acts on (mta/role.ts). */
const MTA_LIMITS = ['max-conn-per-route', 'session-mail-max', 'session-keepalive', 'task-hiwat', 'task-lowat', 'task-release'];
const MDA_LIMITS = ['max-session', 'max-session-per-user'];
const SCHEDULER_LIMITS = ['max-inflight', 'max-evp-batch-size', 'max-schedule'];

/** Every limit key accepted, per directive (the field-walk test checks each is applied). */
export const ACCEPTED_LIMITS = { mta: MTA_LIMITS, mda: MDA_LIMITS, scheduler: SCHEDULER_LIMITS };

const MTA_POOL = 'tsmtpd keeps no per-host, per-source, per-connector or per-relay connection pools or delays, only per route';
/** The rest of limit.c limit_mta_set()'s keys: known to smtpd, refused here by name. */
const MTA_REFUSED: Record<string, string> = {
  ...Object.fromEntries(['max-conn-per-host', 'max-conn-per-source', 'max-conn-per-connector', 'max-conn-per-relay', 'max-conn-per-domain',
    'conn-delay-host', 'conn-delay-route', 'conn-delay-source', 'conn-delay-connector', 'conn-delay-relay', 'conn-delay-domain',
    'reconn-delay-route'].map((k) => [k, MTA_POOL])),
  'session-transaction-delay': 'a session sends its next message at once',
  'max-failures-per-session': 'a session ends at its first connection-level failure',
  // parse.y's opt_limit_mta: MXs of the other family skipped (mta.c family_mismatch)
  ...Object.fromEntries(['inet4', 'inet6'].map((k) => [k, 'the mta tries the MXs of both address families'])),
};

/** scheduler_ram_batch()'s cap on messages per batch; tsmtpd's scheduler caps envelopes (max-schedule) only. */
const SCHEDULER_REFUSED: Record<string, string> = { 'max-msg-batch-size': 'it sizes the pages of a show queue listing in OpenSMTPD (scheduler.c); tsmtpd streams the listing in pages of 1000 envelopes' };

/** mda.c's task watermarks, refused for the same reason as the mta's. */
const MDA_REFUSED: Record<string, string> = Object.fromEntries(['task-hiwat', 'task-lowat', 'task-release']
  .map((k) => [k, 'deliveries wait in the mda without holding envelopes back in the queue; bound them with scheduler limit max-inflight']));

export function parseMta(c: Cursor, config: Config): void {
  const what = c.value('max-deferred, limit or port');
  if (what === 'max-deferred') {
    c.fail('mta max-deferred is not supported by tsmtpd: it keeps no per-host list of deferred envelopes to resend when the host is back (mta_hoststat_cache); they wait for their retry (docs/opensmtpd-differences.md)');
  } else if (what === 'port') {
    const text = c.value('a port');
    const port = parsePort(text);
    if (port === null) c.fail(`invalid port: ${text}`);
    config.mta.port = port;
  } else if (what === 'limit') {
    const limit: Config['mta']['limits'][number] = { limits: {}, where: c.where };
    if (c.accept('for')) {
      c.expect('domain');
      limit.domain = c.name('a domain');
    }
    limits(c, MTA_LIMITS, limit.limits, MTA_REFUSED);
    config.mta.limits.push(limit);
  } else c.fail(`syntax error: unknown mta option: ${what}`);
  c.end();
}

export function parseMda(c: Cursor, config: Config): void {
  const what = c.value('wrapper or limit');
  if (what === 'wrapper') {
    const name = c.name('a wrapper name');
    if (config.mdaWrappers.has(name)) c.fail(`mda wrapper already defined: ${name}`);
    config.mdaWrappers.set(name, { name, command: c.name('a command'), where: c.where });
  } else if (what === 'limit') {
    limits(c, MDA_LIMITS, config.mdaLimits, MDA_REFUSED);
  } else c.fail(`syntax error: unknown mda option: ${what}`);
  c.end();
}

export function parseScheduler(c: Cursor, config: Config): void {
  c.expect('limit');
  limits(c, SCHEDULER_LIMITS, config.schedulerLimits, SCHEDULER_REFUSED);
}

export function parseBounce(c: Cursor, config: Config): void {
  c.expect('warn-interval');
  const intervals = [delay(c)];
  while (c.acceptKind(',')) intervals.push(delay(c));
  c.end();
  if (intervals.length > 4) c.fail('too many warn-interval values (4 at most)');
  config.bounce.warnIntervals = intervals;
}

export function parseSrs(c: Cursor, config: Config): void {
  const srs = config.srs ?? { key: '', ttl: 4 * 86400 };
  const what = c.value('key or ttl');
  if (what === 'key') {
    if (c.accept('backup')) srs.backupKey = c.name('a key');
    else srs.key = c.name('a key');
  } else if (what === 'ttl') {
    // whole days, as smtpd keeps it (sc_srs_ttl /= 86400): less than one is "too short"
    const days = Math.floor(delay(c) / 86400);
    if (days === 0) c.fail('srs ttl delay is too short (one day at least)');
    srs.ttl = days * 86400;
  }
  else c.fail(`syntax error: unknown srs option: ${what}`);
  c.end();
  config.srs = srs;
}

export function parseResolver(c: Cursor, config: Config): void {
  if (c.done()) c.fail('syntax error: resolver needs at least one "ADDR[:PORT]"');
  while (!c.done()) {
    const text = c.value('"ADDR[:PORT]"');
    const server = parseHostPort(text, 53);
    if (server === null) c.fail(`invalid resolver address: ${text}`);
    config.resolvers.push(server);
  }
}

export function parseStat(c: Cursor, config: Config): void {
  c.expect('listen');
  c.expect('on');
  const address = c.value('an address');
  let port = 9100;
  if (c.accept('port')) {
    const text = c.value('a port');
    const p = parsePort(text);
    if (p === null) c.fail(`invalid port: ${text}`);
    port = p;
  }
  c.end();
  config.statListen = { address, port, where: c.where };
}
