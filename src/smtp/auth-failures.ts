/**
 * The pause before a failed AUTH is answered, as OpenSMTPD's smtp_auth_failure_pause() makes
 * it: random, up to a second, so one session cannot try passwords at wire speed and the
 * answer's timing says nothing. (The failures are counted, and addresses banned, by the lka:
 * src/lka/auth-failures.ts.)
 */
import { randomInt } from 'node:crypto';

/** OpenSMTPD pauses arc4random_uniform(1000000) microseconds; a millisecond grain is enough. */
export function authFailurePauseMs(): number {
  return randomInt(1000);
}
