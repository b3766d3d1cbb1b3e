/**
 * One local delivery from envelope to result: find the action and the account, refuse a mail
 * loop, plan, then run the plan in this process or, when the daemon is root, as the user.
 */
import type { DeliveryResult } from '../bus/messages.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config/types.js';
import type { Envelope, UserInfo } from '../queue/envelope.js';
import { runCommand } from './command.js';
import { runJob, runJobAs, type RunAs } from './jobs.js';
import type { MessageBody } from '../queue/body-ref.js';
import { bodyLines, deliveryHeaders, hasDeliveredTo, withPrefix } from './message.js';
import { getentPasswd, type PasswdLookup } from './passwd.js';
import { planDelivery, type Plan, type PlanSettings } from './plan.js';
import { fromFsError, loop, permfail, tempfail } from './results.js';

export interface MdaOptions {
  /** The mbox spool; default `$TSMTPD_MBOX_DIR` or /var/mail. */
  mboxDir?: string;
  /** Limit for one delivery (command, child, LMTP reply): 300 s as OpenSMTPD's alarm(300). */
  timeoutMs?: number;
  /** How long to wait for a held mailbox lock before a tempfail. */
  lockWaitMs?: number;
  /** A dotlock older than this is stale and removed. */
  staleLockMs?: number;
  /** Account lookup for `action ... user NAME`. */
  passwd?: PasswdLookup;
  /** Run deliveries as the user; default: when the daemon runs as root. */
  privileged?: boolean;
}

export interface DelivererDeps {
  config: Config;
  clock: Clock;
  serverName: string;
}

export class Deliverer {
  readonly settings: PlanSettings;
  readonly timeoutMs: number;
  private readonly passwd: PasswdLookup;
  private readonly privileged: boolean;

  constructor(private readonly deps: DelivererDeps, opts: MdaOptions = {}) {
    const envTimeout = Number(process.env['TSMTPD_MDA_TIMEOUT']);
    this.timeoutMs = opts.timeoutMs ?? (envTimeout > 0 ? envTimeout * 1000 : 300_000);
    this.passwd = opts.passwd ?? getentPasswd;
    this.privileged = opts.privileged ?? process.getuid?.() === 0;
    this.settings = {
      mboxDir: opts.mboxDir ?? process.env['TSMTPD_MBOX_DIR'] ?? '/var/mail',
      lockWaitMs: opts.lockWaitMs ?? 120_000,
      staleLockMs: opts.staleLockMs ?? 300_000,
      lmtpTimeoutMs: this.timeoutMs,
      serverName: deps.serverName,
    };
  }

  async deliver(envelope: Envelope, body: MessageBody): Promise<DeliveryResult> {
    const action = this.deps.config.actions.get(envelope.action);
    if (!action) return permfail(`no action "${envelope.action}" in the configuration`);
    const user = envelope.user;
    if (!user) return permfail('Permanent failure in user lookup', 'mailboxMoved');
    const account = await this.account(action.user, user);
    if ('result' in account) return account;
    try {
      if (await hasDeliveredTo(bodyLines(body), envelope.rcpt)) return loop();
    } catch (err) {
      return fromFsError(err, 'cannot read message');
    }
    const plan = planDelivery({ envelope, action, config: this.deps.config, user, account, settings: this.settings });
    return this.run(plan, envelope, body, account);
  }

  /** The action's `user`, looked up now; else the recipient's own account. */
  private async account(name: string | undefined, user: UserInfo): Promise<UserInfo | DeliveryResult> {
    if (!name) return user;
    try {
      const found = await this.passwd(name);
      return found ?? permfail(`delivery user '${name}' does not exist`);
    } catch {
      return tempfail('Temporary failure in user lookup', 'address');
    }
  }

  private async run(plan: Plan, envelope: Envelope, body: MessageBody, account: UserInfo): Promise<DeliveryResult> {
    if (plan.kind === 'fail') return plan.result;
    // Delivered-To is the address as received, as mda.c writes it
    const prefix = deliveryHeaders(envelope.sender, envelope.origRcpt);
    const asUser = this.privileged ? { uid: account.uid, gid: account.gid, home: account.directory } : null;
    if (plan.kind === 'command') {
      const lines = withPrefix(prefix, bodyLines(body));
      return runCommand({ command: plan.command, env: plan.env, home: account.directory, timeoutMs: this.timeoutMs, ...asUser }, lines);
    }
    if (plan.inProcess || !asUser) {
      const [result] = await runJob(plan.job, withPrefix(prefix, bodyLines(body)), this.deps.clock);
      return result!;
    }
    const task = { job: plan.job, prefix: prefix.map((b) => b.toString('utf8')) };
    const [result] = await runJobAs(task, body, asUser as RunAs, this.timeoutMs);
    return result!;
  }
}

/** OpenSMTPD's duration_to_text: `0s`, `1m5s`, `2d3h`. */
export function durationText(seconds: number): string {
  let t = Math.trunc(seconds);
  if (t === 0) return '0s';
  let out = '';
  if (t < 0) {
    out = '-';
    t = -t;
  }
  const s = t % 60;
  const m = Math.floor(t / 60) % 60;
  const h = Math.floor(t / 3600) % 24;
  const d = Math.floor(t / 86400);
  if (d) out += `${d}d`;
  if (h) out += `${h}h`;
  if (m) out += `${m}m`;
  if (s) out += `${s}s`;
  return out;
}
