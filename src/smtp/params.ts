/**
 * The ESMTP parameters after MAIL FROM and RCPT TO (RFC 5321 §4.1.2 esmtp-param): SIZE (RFC
 * 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531), and DSN's RET, ENVID, NOTIFY and ORCPT (RFC 3461).
 * Unknown keywords get 555 5.5.4, malformed or repeated ones 501 5.5.4.
 */
import type { DsnParams } from '../queue/envelope.js';
import type { Reply } from './reply.js';
import type { MailParams } from './transaction.js';
import { decodeXtext } from './xtext.js';

export type ParamResult<T> = { ok: true; value: T } | { ok: false; reply: Reply };

export interface ParamOptions {
  /** DSN is offered on this listener (not `no-dsn`). */
  dsn: boolean;
}

const unknown = (key: string): ParamResult<never> => ({ ok: false, reply: { code: 555, enhanced: '5.5.4', text: `Unsupported parameter: ${key}` } });
const invalid = (key: string): ParamResult<never> => ({ ok: false, reply: { code: 501, enhanced: '5.5.4', text: `Invalid parameter: ${key}` } });

/** What no decoded xtext may hold: CR, LF, NUL and the other controls. */
const CONTROL = /[\x00-\x1f\x7f]/;

/** `KEY[=VALUE]` words; null on a word that is not esmtp-keyword syntax or a repeated keyword. */
function words(text: string): { key: string; value?: string }[] | { bad: string } {
  const out: { key: string; value?: string }[] = [];
  const seen = new Set<string>();
  for (const word of text.split(' ').filter(Boolean)) {
    const eq = word.indexOf('=');
    const key = (eq < 0 ? word : word.slice(0, eq)).toUpperCase();
    const value = eq < 0 ? undefined : word.slice(eq + 1);
    if (!/^[A-Z0-9][A-Z0-9-]*$/.test(key) || value === '' || (value !== undefined && !/^[\x21-\x3c\x3e-\x7e]+$/.test(value))) return { bad: key || word };
    if (seen.has(key)) return { bad: key };
    seen.add(key);
    out.push({ key, ...(value !== undefined ? { value } : {}) });
  }
  return out;
}

export function parseMailParams(text: string, o: ParamOptions): ParamResult<MailParams> {
  const list = words(text);
  if ('bad' in list) return invalid(list.bad);
  const p: MailParams = { smtputf8: false };
  for (const { key, value } of list) {
    switch (key) {
      case 'SIZE':
        if (!value || !/^\d{1,20}$/.test(value)) return invalid(key);
        p.size = Number(value);
        break;
      case 'BODY': {
        const body = value?.toUpperCase();
        if (body !== '7BIT' && body !== '8BITMIME' && body !== 'BINARYMIME') return invalid(key);
        p.body = body;
        break;
      }
      case 'SMTPUTF8':
        if (value !== undefined) return invalid(key);
        p.smtputf8 = true;
        break;
      case 'RET': {
        if (!o.dsn) return unknown(key);
        const ret = value?.toUpperCase();
        if (ret !== 'FULL' && ret !== 'HDRS') return invalid(key);
        p.ret = ret;
        break;
      }
      case 'ENVID': {
        if (!o.dsn) return unknown(key);
        const envid = value === undefined ? null : decodeXtext(value);
        // decoded, it goes into DSN headers: a line break there would be a header of the client's
        if (envid === null || envid.length > 100 || CONTROL.test(envid)) return invalid(key);
        p.envid = envid;
        break;
      }
      case 'AUTH': {
        // RFC 4954 §5: accepted and not trusted; the sender's identity comes from our own AUTH.
        // Still xtext that must decode to a mailbox or `<>`, never to a line break or NUL
        const mailbox = value === undefined ? null : decodeXtext(value);
        if (mailbox === null || CONTROL.test(mailbox)) return invalid(key);
        break;
      }
      default:
        return unknown(key);
    }
  }
  return { ok: true, value: p };
}

const NOTIFY_WORDS = new Set(['SUCCESS', 'FAILURE', 'DELAY']);

export function parseRcptParams(text: string, o: ParamOptions): ParamResult<DsnParams> {
  const list = words(text);
  if ('bad' in list) return invalid(list.bad);
  const p: DsnParams = {};
  for (const { key, value } of list) {
    if ((key === 'NOTIFY' || key === 'ORCPT') && !o.dsn) return unknown(key);
    if (key === 'NOTIFY') {
      const items = (value ?? '').toUpperCase().split(',');
      const never = items.length === 1 && items[0] === 'NEVER';
      if (!never && (items.some((i) => !NOTIFY_WORDS.has(i)) || new Set(items).size !== items.length)) return invalid(key);
      p.notify = items as DsnParams['notify'];
    } else if (key === 'ORCPT') {
      const m = /^([A-Za-z0-9-]+);(.+)$/.exec(value ?? '');
      const addr = m ? decodeXtext(m[2]!) : null;
      if (!m || addr === null || CONTROL.test(addr) || addr.length > 500) return invalid(key);
      p.orcpt = `${m[1]!.toLowerCase()};${addr}`;
    } else {
      return unknown(key);
    }
  }
  return { ok: true, value: p };
}
