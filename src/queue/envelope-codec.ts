/**
 * The one on-disk form of an envelope: versioned JSON. Decoding validates every field, so a
 * damaged or foreign record becomes a reason string, never a half-typed Envelope.
 */
import { isEvpid, isMsgid, msgidOf, type DsnParams, type Envelope, type UserInfo } from './envelope.js';

export const ENVELOPE_VERSION = 1;

export type Decoded = { ok: true; envelope: Envelope } | { ok: false; reason: string };

export function encodeEnvelope(e: Envelope): string {
  return JSON.stringify({ version: ENVELOPE_VERSION, ...e });
}

type Obj = Record<string, unknown>;
class Bad extends Error {}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(o: Obj, k: string): string {
  const v = o[k];
  if (typeof v !== 'string') throw new Bad(`${k} is not a string`);
  return v;
}

function optStr(o: Obj, k: string): string | undefined {
  return o[k] === undefined ? undefined : str(o, k);
}

function num(o: Obj, k: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Bad(`${k} is not a number`);
  return v;
}

function bool(o: Obj, k: string): boolean {
  const v = o[k];
  if (typeof v !== 'boolean') throw new Bad(`${k} is not a boolean`);
  return v;
}

function oneOf<T extends string>(o: Obj, k: string, allowed: readonly T[]): T {
  const v = str(o, k);
  if (!(allowed as readonly string[]).includes(v)) throw new Bad(`${k} has an unknown value`);
  return v as T;
}

function sub(o: Obj, k: string): Obj | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (!isObj(v)) throw new Bad(`${k} is not an object`);
  return v;
}

const NOTIFY = ['NEVER', 'SUCCESS', 'FAILURE', 'DELAY'] as const;

function dsn(o: Obj): DsnParams {
  const d = sub(o, 'dsn');
  if (!d) throw new Bad('dsn is missing');
  const out: DsnParams = {};
  if (d.notify !== undefined) {
    if (!Array.isArray(d.notify) || !d.notify.every((n) => (NOTIFY as readonly unknown[]).includes(n))) {
      throw new Bad('dsn.notify is invalid');
    }
    out.notify = d.notify as DsnParams['notify'];
  }
  const orcpt = optStr(d, 'orcpt');
  if (orcpt !== undefined) out.orcpt = orcpt;
  if (d.ret !== undefined) out.ret = oneOf(d, 'ret', ['FULL', 'HDRS'] as const);
  const envid = optStr(d, 'envid');
  if (envid !== undefined) out.envid = envid;
  return out;
}

function user(o: Obj): UserInfo | undefined {
  const u = sub(o, 'user');
  if (!u) return undefined;
  return { username: str(u, 'username'), uid: num(u, 'uid'), gid: num(u, 'gid'), directory: str(u, 'directory') };
}

/** Optional fields, copied only when present so a round trip keeps the object's exact shape. */
function optionals(o: Obj, e: Envelope): void {
  for (const k of ['tag', 'clientRdns', 'authUser', 'subaddress', 'lastError'] as const) {
    const v = optStr(o, k);
    if (v !== undefined) e[k] = v;
  }
  const u = user(o);
  if (u) e.user = u;
  const t = sub(o, 'mdaTarget');
  if (t) e.mdaTarget = { kind: oneOf(t, 'kind', ['command', 'file'] as const), value: str(t, 'value') };
  const b = sub(o, 'bounce');
  if (b) {
    const reportedEnvelopeId = str(b, 'reportedEnvelopeId');
    e.bounce = { kind: oneOf(b, 'kind', ['failure', 'delay', 'success'] as const), reportedEnvelopeId };
  }
}

function build(o: Obj): Envelope {
  const e: Envelope = {
    id: str(o, 'id'), msgid: str(o, 'msgid'), kind: oneOf(o, 'kind', ['mda', 'mta', 'bounce'] as const),
    action: str(o, 'action'), hostname: str(o, 'hostname'), helo: str(o, 'helo'),
    clientAddress: str(o, 'clientAddress'), sender: str(o, 'sender'), rcpt: str(o, 'rcpt'),
    origRcpt: str(o, 'origRcpt'), dsn: dsn(o), smtputf8: bool(o, 'smtputf8'), junk: bool(o, 'junk'),
    createdAt: num(o, 'createdAt'), ttl: num(o, 'ttl'), tries: num(o, 'tries'),
    lastTry: num(o, 'lastTry'), lastWarn: num(o, 'lastWarn'),
  };
  optionals(o, e);
  if (!isEvpid(e.id) || !isMsgid(e.msgid) || msgidOf(e.id) !== e.msgid) throw new Bad('bad id or msgid');
  return e;
}

/** Parse a record; `expectId`, when given, is the evpid the record was filed under. */
export function decodeEnvelope(text: string, expectId?: string): Decoded {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (!isObj(raw)) return { ok: false, reason: 'not an object' };
  if (raw.version !== ENVELOPE_VERSION) return { ok: false, reason: `unknown version ${String(raw.version)}` };
  try {
    const envelope = build(raw);
    if (expectId !== undefined && envelope.id !== expectId) return { ok: false, reason: 'id does not match its name' };
    return { ok: true, envelope };
  } catch (err) {
    if (err instanceof Bad) return { ok: false, reason: err.message };
    throw err;
  }
}
