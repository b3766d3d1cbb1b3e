/**
 * The command line of `tsmtpd`, parsed into options, with OpenSMTPD's smtpd(8) flags plus
 * `--spool`. Pure: the binary does the I/O.
 */
import { parseArgs } from 'node:util';
import type { BackendChoice } from './context.js';
import { DEFAULT_USERS } from './privileges.js';

/** Exit codes are part of the interface: README documents them and tests check them. */
export const EXIT = {
  OK: 0,
  CONFIG: 1,
  USAGE: 2,
  STARTUP: 3,
  FATAL: 4,
} as const;

export const USAGE =
  'usage: tsmtpd [-dhnv] [-B kind=name] [-D macro=value] [-f file] [--spool dir] [--log file] [--user name] [--queue-user name]';

/** `tsmtpd -h` / `--help`: the usage and every option (a test checks each parseArgs option is here). */
export const HELP = `${USAGE}
  -B kind=name   a backend: queue=fs (default), queue=sqlite, queue=ram; scheduler=ramqueue (default), scheduler=sqlite; stat=ram
  -D name=value  define a macro, overriding the configuration's own definition
  -d             stay in the foreground and log to stderr
  -f file        the configuration file (default /etc/tsmtpd/smtpd.conf)
  -h, --help     print this help and exit
  -n             check the configuration and what it names on this machine (files, addresses,
                 programs), print "configuration OK" or file:line: message, and exit
  -v             log more (debug)
  --log where    where a detached daemon logs: syslog (the default: the mail facility, through
                 logger(1) to /dev/log), syslog:SOCKET (another syslog socket), or a file
  --spool dir    all state: queue, control socket, pid file (default /var/spool/tsmtpd as root,
                 ./spool otherwise)
  --user name    as root, the system user of the unprivileged processes (default _tsmtpd)
  --queue-user name  as root, the system user of the queue process (default _tsmtpq)
Environment: TSMTPD_LIBEXEC, a colon-separated list of directories where filters named without a
path and table-NAME helpers are looked for (default /usr/libexec/opensmtpd, /usr/local/libexec/opensmtpd,
/usr/libexec/smtpd, /usr/local/libexec/smtpd).
Exit status: 0 success, 1 configuration error, 2 usage error, 3 could not start, 4 fatal error.
`;

export interface CliOptions {
  configFile: string;
  foreground: boolean;
  checkOnly: boolean;
  verbose: number;
  macros: Record<string, string>;
  backends: BackendChoice;
  spool?: string;
  logFile?: string;
  /** The system users of the unprivileged processes and of the queue, when run as root. */
  users: { unprivileged: string; queue: string };
  help: boolean;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

/** The backends each `-B` kind knows; a name outside these is a usage error, never a fallback. */
export const BACKEND_NAMES: Record<keyof BackendChoice, readonly string[]> = {
  queue: ['fs', 'sqlite', 'ram', 'postgres'],
  scheduler: ['ramqueue', 'sqlite', 'postgres'],
  stat: ['ram'],
};
const BACKEND_KINDS = Object.keys(BACKEND_NAMES);

function keyValue(arg: string, what: string): [string, string] {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new UsageError(`${what} must be NAME=VALUE: ${arg}`);
  return [arg.slice(0, eq), arg.slice(eq + 1)];
}

/**
 * A queue several nodes share is scheduled from the store they share: `-B queue=postgres` brings
 * the postgres scheduler with it, and neither goes with another's half (a node-local scheduler
 * over a shared queue would deliver every message once per node).
 */
function sharedQueue(backends: BackendChoice, schedulerGiven: boolean): void {
  const pgQueue = backends.queue === 'postgres';
  if (pgQueue && !schedulerGiven) backends.scheduler = 'postgres';
  if (pgQueue !== (backends.scheduler === 'postgres')) {
    throw new UsageError('-B: queue=postgres and scheduler=postgres go together (a shared queue needs the shared scheduler)');
  }
}

export function parseCli(argv: string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        f: { type: 'string' },
        d: { type: 'boolean' },
        n: { type: 'boolean' },
        v: { type: 'boolean', multiple: true },
        D: { type: 'string', multiple: true },
        B: { type: 'string', multiple: true },
        h: { type: 'boolean' },
        help: { type: 'boolean' },
        spool: { type: 'string' },
        log: { type: 'string' },
        user: { type: 'string' },
        'queue-user': { type: 'string' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  const macros: Record<string, string> = {};
  for (const d of v.D ?? []) {
    const [k, val] = keyValue(d, '-D');
    macros[k] = val;
  }
  const backends: BackendChoice = { queue: 'fs', scheduler: 'ramqueue', stat: 'ram' };
  for (const b of v.B ?? []) {
    const [kind, name] = keyValue(b, '-B');
    if (!BACKEND_KINDS.includes(kind)) {
      throw new UsageError(`-B: unknown backend kind ${kind} (queue, scheduler or stat)`);
    }
    const known = BACKEND_NAMES[kind as keyof BackendChoice];
    if (!known.includes(name)) throw new UsageError(`-B: unknown ${kind} backend ${name} (${known.join(', ')})`);
    backends[kind as keyof BackendChoice] = name;
  }
  sharedQueue(backends, (v.B ?? []).some((b) => b.startsWith('scheduler=')));
  return {
    configFile: v.f ?? '/etc/tsmtpd/smtpd.conf',
    foreground: v.d ?? false,
    checkOnly: v.n ?? false,
    verbose: v.v?.length ?? 0,
    macros,
    backends,
    spool: v.spool,
    logFile: v.log,
    users: { unprivileged: v.user ?? DEFAULT_USERS.unprivileged, queue: v['queue-user'] ?? DEFAULT_USERS.queue },
    help: (v.h ?? false) || (v.help ?? false),
  };
}
