/**
 * What each step of the client dialogue may be answered, after RFC 5321 §4.3.2 (and RFC 3207 for
 * STARTTLS, RFC 4954 for AUTH, RFC 2033 for LMTP): the one positive reply (or two) the step
 * allows, or a failure by its class, 4xx or 5xx. Anything else is a server out of step with us:
 * a 250 to DATA would have the message counted as delivered with its body never sent. That is
 * a protocol error, thrown, and the envelopes wait for another try. OpenSMTPD's mta_response
 * reads the first digit only (2 or 3 at DATA both start the body); tsmtpd is stricter.
 */
import { replyText, type Reply } from './reply-parser.js';
import { MtaSessionError } from './session-error.js';

export type Step = 'greeting' | 'ehlo' | 'helo' | 'starttls' | 'auth' | 'auth-challenge' | 'mail' | 'rcpt' | 'data' | 'data-end' | 'rset';

/** The positive replies each step allows, and how a log line names the step. */
const STEPS: Record<Step, { positive: readonly number[]; what: string }> = {
  greeting: { positive: [220], what: 'the greeting' },
  ehlo: { positive: [250], what: 'EHLO' },
  helo: { positive: [250], what: 'HELO' },
  starttls: { positive: [220], what: 'STARTTLS' },
  auth: { positive: [235], what: 'AUTH' },
  // AUTH LOGIN's prompts for the user name and the password
  'auth-challenge': { positive: [334], what: 'AUTH LOGIN' },
  mail: { positive: [250], what: 'MAIL' },
  // 251: the server will forward to another address, and accepts the recipient
  rcpt: { positive: [250, 251], what: 'RCPT' },
  data: { positive: [354], what: 'DATA' },
  // one reply to the final dot (LMTP: one per accepted recipient)
  'data-end': { positive: [250], what: 'the final dot' },
  rset: { positive: [250], what: 'RSET' },
};

/** `positive` or `negative` (4xx/5xx); a reply the step does not allow throws a protocol error. */
export function checkReply(step: Step, r: Reply): 'positive' | 'negative' {
  const { positive, what } = STEPS[step];
  if (positive.includes(r.code)) return 'positive';
  if (r.code >= 400 && r.code <= 599) return 'negative';
  throw new MtaSessionError('protocol', `reply not allowed to ${what}: ${replyText(r)}`, { enhanced: '4.5.0' });
}
