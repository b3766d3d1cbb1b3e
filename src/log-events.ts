/**
 * Every event name a log line may carry, so that the set is known, documented (README's log
 * table mirrors it) and grep-able. Add a name here before logging it.
 */
export const LOG_EVENTS = [
  // daemon lifecycle, processes and the bus between them
  'startup', 'ready', 'shutdown', 'config-error', 'fatal', 'process-start', 'process-exit', 'bus-error', 'users',
  'offline',
  // smtp
  'listen', 'connected', 'disconnected', 'protocol-client', 'protocol-server', 'tls', 'auth',
  'envelope', 'message', 'failed-command', 'bad-input', 'authentication', 'cert-check', 'timeout', 'limit', 'rcpt-refused', 'message-refused',
  'session-error', 'banned', 'proxy',
  // queue and scheduler
  'queue-load', 'queue-damaged', 'queue-database', 'lease', 'commit', 'commit-failed', 'remove', 'expire', 'delay-notice', 'schedule',
  'bounce', 'bounce-failed', 'bounce-dropped', 'bounce-undeliverable', 'dsn-failed',
  // delivery
  'delivery', 'delivery-error', 'mta-connect', 'mta-error', 'tls-downgrade', 'mda-error', 'resolver',
  // lka, tables, filters
  'ruleset', 'table-update', 'table-error', 'filter-error', 'filter-report', 'filter-response', 'filter-start',
  'filter-exit', 'filter-stderr',
  // control and stat; `tsmtpctl trace` and `profile` (trace.ts)
  'control', 'stat', 'trace', 'profile-imsg', 'profile-queue',
] as const;

export type LogEvent = (typeof LOG_EVENTS)[number];
