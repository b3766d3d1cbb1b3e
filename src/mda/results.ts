/**
 * Every local delivery outcome, built from one table of enhanced status codes (RFC 3463) as
 * OpenSMTPD's mda.c picks them, plus the sysexits(3) meanings it logs for a helper's exit code.
 */
import type { DeliveryResult } from '../bus/messages.js';

/** The subject.detail part of each code mda uses; the class (4 or 5) follows the outcome. */
export const ESC = {
  /** ESC_OTHER_MAIL_SYSTEM_STATUS: what OpenSMTPD reports for any helper failure. */
  mailSystem: '3.0',
  /** ESC_OTHER_ADDRESS_STATUS: the user lookup failed for now. */
  address: '1.0',
  /** ESC_DESTINATION_MAILBOX_HAS_MOVED: the user lookup failed for good. */
  mailboxMoved: '1.6',
  /** ESC_ROUTING_LOOP_DETECTED: our own Delivered-To is already in the message. */
  loop: '4.6',
  /** Mailbox full / quota (4.2.2), used when the disk is full. */
  mailboxFull: '2.2',
} as const;

export type EscKey = keyof typeof ESC;

export function ok(detail = 'Delivered'): DeliveryResult {
  return { result: 'ok', detail };
}

/** mda.c: our own Delivered-To already in the message is IMSG_MDA_DELIVERY_LOOP, not a plain failure. */
export function loop(): DeliveryResult {
  return { result: 'loop', enhanced: `5.${ESC.loop}`, detail: 'Loop detected' };
}

export function tempfail(detail: string, esc: EscKey = 'mailSystem'): DeliveryResult {
  return { result: 'tempfail', enhanced: `4.${ESC[esc]}`, detail };
}

export function permfail(detail: string, esc: EscKey = 'mailSystem'): DeliveryResult {
  return { result: 'permfail', enhanced: `5.${ESC[esc]}`, detail };
}

/** A remote (LMTP) reply keeps its own enhanced code when it gave one. */
export function fromReply(code: number, enhanced: string | undefined, detail: string): DeliveryResult {
  if (code >= 200 && code < 300) return ok(detail);
  const cls = code >= 500 && code < 600 ? 5 : 4;
  const esc = enhanced && enhanced.startsWith(`${cls}.`) ? enhanced : `${cls}.${ESC.mailSystem}`;
  return cls === 5 ? { result: 'permfail', enhanced: esc, detail } : { result: 'tempfail', enhanced: esc, detail };
}

/** sysexits(3) codes the helpers and commands speak. */
export const EX = {
  OK: 0,
  USAGE: 64,
  DATAERR: 65,
  NOINPUT: 66,
  NOUSER: 67,
  NOHOST: 68,
  UNAVAILABLE: 69,
  SOFTWARE: 70,
  OSERR: 71,
  OSFILE: 72,
  CANTCREAT: 73,
  IOERR: 74,
  TEMPFAIL: 75,
  PROTOCOL: 76,
  NOPERM: 77,
  CONFIG: 78,
} as const;

const SYSEXIT_TEXT: Record<number, string> = {
  64: 'command line usage error',
  65: 'data format error',
  66: 'cannot open input',
  67: 'user unknown',
  68: 'host name unknown',
  69: 'service unavailable',
  70: 'internal software error',
  71: 'system resource problem',
  72: 'critical OS file missing',
  73: "can't create user output file",
  74: 'input/output error',
  75: 'temporary failure',
  76: 'remote error in protocol',
  77: 'permission denied',
  78: 'local configuration error',
};

export function sysexitText(code: number): string | undefined {
  return SYSEXIT_TEXT[code];
}

/** OpenSMTPD's rule: 0 is delivered, EX_OSERR and EX_TEMPFAIL are retried, the rest bounce. */
export function classifyExit(code: number): 'ok' | 'tempfail' | 'permfail' {
  if (code === EX.OK) return 'ok';
  return code === EX.OSERR || code === EX.TEMPFAIL ? 'tempfail' : 'permfail';
}


/** A failed file-system call as a result: transient errors retry, the rest (EACCES, ENOTDIR...) also
 * retry, as mail.maildir exits EX_TEMPFAIL for them; only a bad path is permanent. */
export function fromFsError(err: unknown, what: string): DeliveryResult {
  const e = err as NodeJS.ErrnoException;
  const detail = `${what}: ${e.code ?? 'error'}${e.message ? ' ' + firstLine(e.message) : ''}`;
  if (e.code === 'ENAMETOOLONG' || e.code === 'EINVAL') return permfail(detail);
  if (e.code === 'ENOSPC' || e.code === 'EDQUOT') return tempfail(detail, 'mailboxFull');
  return tempfail(detail);
}

function firstLine(s: string): string {
  return s.split('\n', 1)[0]!;
}
