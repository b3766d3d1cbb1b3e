/**
 * Decides how one envelope is delivered, with no I/O: from its action's method (or the alias
 * target `|command` / `/file` the expansion gave it) to a job or a command line, with formats
 * expanded, the wrapper applied and OpenSMTPD's refusals (root, unknown wrapper) as results.
 */
import { resolve } from 'node:path';
import type { DeliveryResult } from '../bus/messages.js';
import type { Action, Config } from '../config/types.js';
import type { Envelope, UserInfo } from '../queue/envelope.js';
import { mdaEnv } from './command.js';
import { expandFormat, sanitize, type FormatVars } from './format.js';
import type { Job } from './jobs.js';
import { permfail } from './results.js';

export interface PlanSettings {
  /** Where `mbox` mailboxes live: /var/mail by default. */
  mboxDir: string;
  lockWaitMs: number;
  staleLockMs: number;
  lmtpTimeoutMs: number;
  /** The LHLO name. */
  serverName: string;
}

export type Plan =
  /** `inProcess`: the system mailbox, written by the daemon itself as mail.local (setuid root) does. */
  | { kind: 'job'; job: Job; inProcess: boolean }
  | { kind: 'command'; command: string; env: Record<string, string> }
  | { kind: 'fail'; result: DeliveryResult };

export interface PlanInput {
  envelope: Envelope;
  action: Action;
  config: Pick<Config, 'mdaWrappers' | 'smtp'>;
  /** The recipient's account, from the lka's expansion. */
  user: UserInfo;
  /** Whom the delivery runs as: the action's `user`, or the recipient. */
  account: UserInfo;
  settings: PlanSettings;
}

export function formatVars(envelope: Envelope, user: UserInfo, subAddrDelim: string): FormatVars {
  return {
    sender: envelope.sender,
    rcpt: envelope.origRcpt,
    dest: envelope.rcpt,
    username: user.username,
    directory: user.directory,
    subAddrDelim,
  };
}

/**
 * The sub-address is the expansion's alone (mda_subaddress, set from the user node's `+tag`): the
 * dest keeps the address as received, so `ann+x@virt` mapped to `vmail` has no extension.
 */
export function extensionOf(envelope: Envelope): string | undefined {
  return envelope.subaddress || undefined;
}

export function planDelivery(p: PlanInput): Plan {
  const { envelope, action, user, account } = p;
  const method = action.method;
  const target = envelope.mdaTarget;
  if (account.uid === 0 && (method.kind !== 'mbox' || target)) {
    return fail(permfail(`MDA not allowed to deliver to: ${user.username}`));
  }
  const vars = formatVars(envelope, user, p.config.smtp.subAddrDelim);
  if (target?.kind === 'command') return commandPlan(p, vars, target.value.replace(/^\|\s*/, ''));
  if (target?.kind === 'file') return fileJob(p, vars, target.value);
  switch (method.kind) {
    case 'mda':
      return commandPlan(p, vars, method.command);
    case 'maildir':
      return maildirJob(p, vars, method.path ?? `${account.directory}/Maildir`, method.junk);
    case 'mbox':
      return mboxJob(p);
    case 'lmtp':
      return lmtpJob(p, method.destination, method.rcptTo);
    default:
      return fail(permfail(`action "${action.name}" (${method.kind}) cannot deliver to a mailbox`));
  }
}

function commandPlan(p: PlanInput, vars: FormatVars, command: string): Plan {
  const expanded = expandFormat(command, vars);
  if (!expanded.ok) return fail(permfail(`mda command line could not be expanded: ${expanded.error}`));
  let line = expanded.value;
  if (p.action.wrapper) {
    const wrapper = p.config.mdaWrappers.get(p.action.wrapper);
    if (!wrapper) return fail(permfail(`could not find wrapper ${p.action.wrapper}`));
    const wrapped = expandFormat(wrapper.command, { ...vars, mda: line });
    if (!wrapped.ok) return fail(permfail(`mda wrapper could not be expanded: ${wrapped.error}`));
    line = wrapped.value;
  }
  const env = mdaEnv({
    sender: p.envelope.sender,
    rcpt: p.envelope.origRcpt,
    dest: p.envelope.rcpt,
    username: p.user.username,
    home: p.account.directory,
    extension: extensionOf(p.envelope),
  });
  return { kind: 'command', command: line, env };
}

function maildirJob(p: PlanInput, vars: FormatVars, path: string, junk: boolean): Plan {
  const expanded = expandFormat(path, vars);
  if (!expanded.ok) return fail(permfail(`maildir path could not be expanded: ${expanded.error}`));
  const extension = extensionOf(p.envelope);
  return {
    kind: 'job',
    inProcess: false,
    // a relative path is the daemon's, from where it was started: the child runs elsewhere
    job: { kind: 'maildir', maildir: { path: resolve(expanded.value), junk, envelopeJunk: p.envelope.junk, ...(extension ? { extension } : {}) } },
  };
}

/** Alias `/file`: mail.mboxfile -f %{mbox.from} FILE, as the user, with no spool dotlock. */
function fileJob(p: PlanInput, vars: FormatVars, path: string): Plan {
  if (!path.startsWith('/')) return fail(permfail(`mbox file path is not absolute: ${path}`));
  const from = vars.sender === '' ? 'MAILER-DAEMON' : sanitize(vars.sender);
  return { kind: 'job', inProcess: false, job: { kind: 'mbox', mbox: { path, from, flockWaitMs: p.settings.lockWaitMs } } };
}

function mboxJob(p: PlanInput): Plan {
  const { username, uid, gid } = p.user;
  // the name becomes a file name in the spool: it must be one path component
  if (!username || username.includes('/') || username === '.' || username === '..') {
    return fail(permfail(`invalid mailbox name: ${username}`));
  }
  const dir = p.settings.mboxDir;
  return {
    kind: 'job',
    inProcess: true,
    job: {
      kind: 'mbox',
      mbox: {
        path: `${dir}/${username}`,
        from: p.envelope.sender === '' ? 'MAILER-DAEMON' : p.envelope.sender,
        owner: { uid, gid },
        dotlock: { path: `${dir}/${username}.lock`, waitMs: p.settings.lockWaitMs, staleMs: p.settings.staleLockMs },
        flockWaitMs: p.settings.lockWaitMs,
        spoolDir: dir,
      },
    },
  };
}

/** mail.lmtp -u sends the local user name, -r (`rcpt-to`) the recipient address. */
function lmtpJob(p: PlanInput, destination: string, rcptTo: boolean): Plan {
  const rcpt = rcptTo ? p.envelope.rcpt : p.user.username;
  return {
    kind: 'job',
    inProcess: false,
    job: {
      kind: 'lmtp',
      lmtp: {
        destination, lhlo: p.settings.serverName, mailFrom: p.envelope.sender, rcpts: [rcpt],
        ...(p.envelope.smtputf8 ? { smtputf8: true } : {}), timeoutMs: p.settings.lmtpTimeoutMs,
      },
    },
  };
}

function fail(result: DeliveryResult): Plan {
  return { kind: 'fail', result };
}
