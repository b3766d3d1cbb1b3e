/**
 * AUTH PLAIN (RFC 4616) and LOGIN as a small state machine with no I/O: each client line in,
 * either the next challenge, the credentials to check, or the reply that ends the exchange.
 */
import type { Reply } from './reply.js';

export type SaslStep =
  | { kind: 'challenge'; text: string }
  | { kind: 'credentials'; user: string; password: string }
  | { kind: 'done'; reply: Reply };

const MAX_FIELD = 255;
const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const cancelled: SaslStep = { kind: 'done', reply: { code: 501, enhanced: '5.7.0', text: 'Authentication aborted' } };
const malformed: SaslStep = { kind: 'done', reply: { code: 501, enhanced: '5.5.2', text: 'Syntax error in authentication data' } };

function decode(line: string): string | null {
  if (!B64.test(line)) return null;
  const text = Buffer.from(line, 'base64').toString('utf8');
  return text;
}

/** `[authzid] NUL authcid NUL passwd`; an authzid other than the user is refused (no proxy auth). */
function plain(line: string): SaslStep {
  const text = decode(line);
  if (text === null) return malformed;
  const parts = text.split('\0');
  if (parts.length !== 3) return malformed;
  const [authz, user, password] = parts as [string, string, string];
  if (!user || !password || user.length > MAX_FIELD || password.length > MAX_FIELD) return malformed;
  if (authz && authz !== user) return { kind: 'done', reply: { code: 535, enhanced: '5.7.8', text: 'Authentication credentials invalid' } };
  return { kind: 'credentials', user, password };
}

export class SaslExchange {
  private user: string | null = null;

  private constructor(private readonly mechanism: 'PLAIN' | 'LOGIN') {}

  /** `AUTH mechanism [initial-response]`: the first step, or null for an unknown mechanism. */
  static start(arg: string): { exchange: SaslExchange; step: SaslStep } | null {
    const [mech, initial, extra] = arg.split(' ');
    const m = mech?.toUpperCase();
    if ((m !== 'PLAIN' && m !== 'LOGIN') || extra !== undefined) return null;
    const exchange = new SaslExchange(m);
    if (initial === undefined) return { exchange, step: { kind: 'challenge', text: m === 'PLAIN' ? '' : 'VXNlcm5hbWU6' } };
    return { exchange, step: exchange.next(initial === '=' ? '' : initial) };
  }

  /** How a log names the line the client sends next (OpenSMTPD's STATE_AUTH_INIT, _USERNAME, _PASSWORD). */
  get label(): string {
    if (this.mechanism === 'PLAIN') return 'AUTH PLAIN (...)';
    return this.user === null ? 'AUTH LOGIN (username)' : 'AUTH LOGIN (password)';
  }

  /** The client's next line. */
  next(line: string): SaslStep {
    if (line === '*') return cancelled;
    if (this.mechanism === 'PLAIN') return plain(line);
    const text = decode(line);
    if (text === null || text.length > MAX_FIELD || /[\0\r\n]/.test(text)) return malformed;
    if (this.user === null) {
      if (!text) return malformed;
      this.user = text;
      return { kind: 'challenge', text: 'UGFzc3dvcmQ6' };
    }
    return text ? { kind: 'credentials', user: this.user, password: text } : malformed;
  }
}
