/**
 * The one error a client session throws: where it failed, and how the envelopes in flight must
 * be answered (tempfail or permfail, with an enhanced code), so that callers classify nothing.
 */
import { TsmtpdError } from '../errors.js';

/** `protocol`: the server answered a step with a reply the step does not allow (reply-steps.ts). */
export type SessionStage = 'connect' | 'greeting' | 'tls' | 'auth' | 'transaction' | 'protocol' | 'io';

export class MtaSessionError extends TsmtpdError {
  override name = 'MtaSessionError';
  readonly code = 'TSMTPD_ERR_MTA_SESSION';
  constructor(
    readonly stage: SessionStage,
    readonly detail: string,
    readonly options: { permanent?: boolean; enhanced?: string; downgrade?: boolean } = {},
  ) {
    super(`${stage}: ${detail}`);
  }

  get permanent(): boolean {
    return this.options.permanent === true;
  }

  get enhanced(): string {
    return this.options.enhanced ?? (this.permanent ? '5.0.0' : '4.0.0');
  }

  /** An opportunistic TLS handshake broke: the connector may try once more in plaintext. */
  get downgrade(): boolean {
    return this.options.downgrade === true;
  }
}
