/**
 * Every event name a log line may carry, so that the set is known, documented (README's log
 * table mirrors it) and grep-able. Add a name here before logging it.
 */
export const LOG_EVENTS = [
  // daemon lifecycle
  'startup', 'ready', 'shutdown', 'config-error', 'fatal',
  // smtp
  'listen', 'connected', 'disconnected', 'protocol-client', 'protocol-server', 'tls', 'auth',
  'envelope', 'message', 'failed-command', 'timeout', 'limit',
  // queue and scheduler
  'queue-load', 'queue-damaged', 'commit', 'remove', 'expire', 'schedule', 'bounce',
  // delivery
  'delivery', 'mta-connect', 'mta-error', 'mda-error', 'resolver',
  // lka, tables, filters
  'table-update', 'table-error', 'filter-error', 'filter-report',
  // control and stat
  'control', 'stat',
] as const;

export type LogEvent = (typeof LOG_EVENTS)[number];
