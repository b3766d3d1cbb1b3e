/**
 * The error catalog of tsmtpd: every error class has a stable `code` that logs, tests and the
 * control protocol rely on. Exceptions are bugs or I/O failures; protocol outcomes are values.
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

/** The queue cannot take the message now (disk full, I/O error): answered 451/452. */
export class QueueFullError extends TsmtpdError {
  override name = 'QueueFullError';
  readonly code = 'TSMTPD_ERR_QUEUE_FULL';
}

export class QueueIoError extends TsmtpdError {
  override name = 'QueueIoError';
  readonly code = 'TSMTPD_ERR_QUEUE_IO';
}

/** A table backend failed to load or answer; the rule using it is a tempfail. */
export class TableError extends TsmtpdError {
  override name = 'TableError';
  readonly code = 'TSMTPD_ERR_TABLE';
}

/** A message sent on the bus to a role that is not a declared peer, or with no handler. */
export class BusError extends TsmtpdError {
  override name = 'BusError';
  readonly code = 'TSMTPD_ERR_BUS';
}

/** A control-socket request the daemon refused (permission, unknown command, bad argument). */
export class ControlError extends TsmtpdError {
  override name = 'ControlError';
  readonly code = 'TSMTPD_ERR_CONTROL';
}
