/** Shared fixtures for the mda tests: temp dirs, a delivery user the tests may become, envelopes. */
import { chmod, chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { BodyRef } from '../../src/bus/messages.js';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { createReadStream } from 'node:fs';
import type { Action, Config } from '../../src/config/types.js';
import { splitLines } from '../../src/mda/message.js';
import type { Envelope, UserInfo } from '../../src/queue/envelope.js';

export const IS_ROOT = process.getuid?.() === 0;

/** As root, deliveries drop to `nobody` (65534); otherwise they run as ourselves. */
export function testUser(home: string): UserInfo {
  if (IS_ROOT) return { username: 'nobody', uid: 65534, gid: 65534, directory: home };
  const me = userInfo();
  return { username: me.username, uid: me.uid, gid: me.gid, directory: home };
}

export async function tempDir(prefix = 'tsmtpd-mda-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  // the delivery user must be able to pass through to its own directories
  if (IS_ROOT) await chmod(dir, 0o711);
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A directory the delivery user owns (chowned when we are root). */
export async function ownedDir(path: string, user: UserInfo): Promise<void> {
  const { mkdir } = await import('node:fs/promises');
  await mkdir(path, { recursive: true, mode: 0o700 });
  if (IS_ROOT) await chown(path, user.uid, user.gid);
}

export async function writeBody(dir: string, text: string, name = 'body'): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text, { mode: 0o600 });
  return path;
}

export function envelope(over: Partial<Envelope> = {}): Envelope {
  return {
    id: '0123456789abcdef',
    msgid: '01234567',
    kind: 'mda',
    action: 'local',
    hostname: 'mx.example.org',
    helo: 'client.example.net',
    clientAddress: '127.0.0.1',
    sender: 'alice@example.net',
    rcpt: 'bob@example.org',
    origRcpt: 'Bob@Example.org',
    dsn: {},
    smtputf8: false,
    junk: false,
    createdAt: Math.floor(Date.now() / 1000) - 65,
    ttl: 345600,
    tries: 0,
    lastTry: 0,
    lastWarn: 0,
    ...over,
  };
}

export function action(method: Action['method'], over: Partial<Action> = {}): Action {
  return { name: 'local', method, where: { file: 'test.conf', line: 1 }, ...over };
}

/** The parts of Config the mda reads, the rest empty. */
export function config(actions: Action[], over: Partial<Config> = {}): Config {
  return {
    file: 'test.conf',
    macros: {},
    tables: new Map(),
    pkis: new Map(),
    cas: new Map(),
    listeners: [],
    actions: new Map(actions.map((a) => [a.name, a])),
    rules: [],
    filters: new Map(),
    procs: new Map(),
    mdaWrappers: new Map(),
    mdaLimits: {},
    queue: { compression: false, ttl: 345600 },
    smtp: { ciphers: '', maxMails: 100, maxRcpt: 1000, maxMessageSize: 35 * 1024 * 1024, subAddrDelim: '+', timeout: 300, workers: 1, maxSessions: 10_000, maxSessionsPerAddress: 100, maxCommandTime: 300, minDataRate: 500 },
    mta: { port: 25, limits: [] },
    schedulerLimits: {},
    bounce: { warnIntervals: [14400] },
    resolvers: [],
    ...over,
  };
}

export const MESSAGE = [
  'From: Alice <alice@example.net>',
  'To: bob@example.org',
  'Subject: hello',
  '',
  'first line',
  'From the start of a line',
  '.a dot line',
  'last line',
  '',
].join('\r\n');

/** A body file as the line stream the delivery functions take. */
export function fileLines(path: string): AsyncGenerator<Buffer> {
  return splitLines(createReadStream(path, { highWaterMark: 64 * 1024 }));
}

/** A body file as a delivery request carries it: inline, as the queue sends small bodies. */
export async function inlineRef(path: string): Promise<BodyRef> {
  const inline = await readFile(path);
  return { msgid: '01234567', size: inline.length, inline };
}
