/**
 * The error catalog of tsmtpd: every error class has a stable `code` that logs, tests and the
 * control protocol rely on. Exceptions are bugs or I/O failures; protocol outcomes are values.
 * Each role adds its classes here as it lands.
 */

export abstract class TsmtpdError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A configuration error located at `file:line`; the daemon refuses to start on one. */
export class ConfigError extends TsmtpdError {
  override name = 'ConfigError';
  readonly code = 'TSMTPD_ERR_CONFIG';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly detail: string,
  ) {
    super(`${file}:${line}: ${detail}`);
  }
}

/** A message sent on the bus to a role that is not a declared peer, or with no handler. */
export class BusError extends TsmtpdError {
  override name = 'BusError';
  readonly code = 'TSMTPD_ERR_BUS';
}
