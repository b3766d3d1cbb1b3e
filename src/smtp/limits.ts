/** The session limits of the smtp role, in one place; the config may override some later. */
export const SESSION_LIMITS = {
  /** Idle time allowed between two commands, as smtpd's 300 s session timeout. */
  idleTimeoutMs: 300_000,
  /** The longest a client may take over one command line (`smtp limit max-command-time`). */
  commandTimeMs: 300_000,
  /** Octets per second a DATA or BDAT body must keep up (`smtp limit min-data-rate`). */
  minDataRate: 500,
  /** Bad commands tolerated before the session is closed with 421. */
  maxErrors: 20,
  /**
   * NOOP, RSET, HELP, VRFY, EXPN, HELO and EHLO allowed between two steps forward (a message
   * accepted, TLS, AUTH): OpenSMTPD's SMTP_KICKTHRESHOLD, the 50 of its 2012 kick counter.
   */
  maxJunkCommands: 50,
  /** Failed AUTH attempts before the session is closed with 421. */
  maxAuthFailures: 3,
  /** Sessions open at once, overall and per client address. */
  maxSessions: 10_000,
  maxSessionsPerAddress: 100,
  /** Loopback clients (local submission, benchmarks) are not held to the per-address cap. */
  exemptLoopback: true,
  /** Commands read ahead of the one being answered (pipelining) before the socket is paused. */
  maxPipelined: 100,
};

export type SessionLimits = typeof SESSION_LIMITS;
