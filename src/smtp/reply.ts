/**
 * SMTP replies as values: `{ code, enhanced, text }`, formatted on the wire with the enhanced
 * status code (RFC 2034) in every line, continuation lines marked with `-`.
 */

export interface Reply {
  code: number;
  /** RFC 3463 class.subject.detail, e.g. `2.0.0`; omitted only for the banner and EHLO lines. */
  enhanced?: string;
  text: string | string[];
}

export function formatReply(reply: Reply): string {
  const lines = Array.isArray(reply.text) ? reply.text : [reply.text];
  const prefix = reply.enhanced ? `${reply.enhanced} ` : '';
  return lines
    .map((line, i) => `${reply.code}${i < lines.length - 1 ? '-' : ' '}${prefix}${line}`)
    .join('\r\n') + '\r\n';
}

/** The replies the session gives, in one table, so their codes and texts stay consistent. */
export const REPLIES = {
  ok: { code: 250, enhanced: '2.0.0', text: 'Ok' },
  bye: { code: 221, enhanced: '2.0.0', text: 'Bye' },
  syntax: { code: 500, enhanced: '5.5.1', text: 'Invalid command: Command unrecognized' },
  lineTooLong: { code: 500, enhanced: '5.5.2', text: 'Line too long' },
  argsSyntax: { code: 501, enhanced: '5.5.4', text: 'Syntax error in parameters or arguments' },
  badSequence: { code: 503, enhanced: '5.5.1', text: 'Invalid command: Command out of sequence' },
  notImplemented: { code: 502, enhanced: '5.5.1', text: 'Invalid command: Command not implemented' },
  vrfy: { code: 252, enhanced: '2.5.2', text: 'Cannot VRFY user, but will accept message and attempt delivery' },
  heloFirst: { code: 503, enhanced: '5.5.1', text: 'Invalid command: Polite people say HELO first' },
  tempfail: { code: 451, enhanced: '4.3.0', text: 'Temporary failure' },
  tooManyErrors: { code: 421, enhanced: '4.7.0', text: 'Too many errors, closing connection' },
  timeout: { code: 421, enhanced: '4.4.2', text: 'Timeout, closing connection' },
  shutdown: { code: 421, enhanced: '4.3.2', text: 'Service shutting down' },
  paused: { code: 421, enhanced: '4.3.2', text: 'Service temporarily unavailable, try again later' },
  tooManySessions: { code: 421, enhanced: '4.7.0', text: 'Too many sessions, try again later' },
  internalError: { code: 421, enhanced: '4.3.0', text: 'Internal error, closing connection' },
  tooSlow: { code: 421, enhanced: '4.4.2', text: 'Too slow, closing connection' },
  bareLineEnd: { code: 501, enhanced: '5.5.2', text: 'Bare CR or LF in command line (RFC 5321 section 2.3.8)' },
  malformedBdat: { code: 421, enhanced: '4.5.4', text: 'Malformed BDAT, closing connection' },
  tooManyCommands: { code: 421, enhanced: '4.7.0', text: 'Too many commands without a message, closing connection' },
  authFailed: { code: 535, enhanced: '5.7.8', text: 'Authentication failed' },
  authInTransaction: { code: 503, enhanced: '5.5.1', text: 'Invalid command: AUTH not permitted during a mail transaction' },
  tooManyAuthFailures: { code: 421, enhanced: '4.7.0', text: 'Too many authentication failures, closing connection' },
  banned: { code: 421, enhanced: '4.7.0', text: 'Too many authentication failures from your address, try again later' },
  tooLarge: { code: 552, enhanced: '5.3.4', text: 'Message size exceeds fixed maximum message size' },
} satisfies Record<string, Reply>;
