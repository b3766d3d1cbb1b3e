/**
 * Recipient expansion, as OpenSMTPD's lka does it: an accepted recipient becomes final
 * envelopes through virtual and alias tables, the user base and `~/.forward`, each produced
 * address going through the ruleset again. Unknown users are refused here, at RCPT time, so no
 * bounce is ever owed for them.
 */
import { lstat, readFile } from 'node:fs/promises';
import { MAX_FORWARD_BYTES } from './forward-file.js';
import type { SessionFacts, WireReply } from '../bus/messages.js';
import type { Action, Config } from '../config/types.js';
import type { UserInfo } from '../queue/envelope.js';
import type { ExpandTarget, TableSet } from '../table/types.js';
import { parseAliasValue } from '../table/alias.js';
import { evaluateRules } from './ruleset.js';
import { trace } from '../trace.js';

/** OpenSMTPD's expansion depth limit. */
const MAX_DEPTH = 10;
const MAX_LEAVES = 1000;

export type Leaf =
  | { kind: 'mta'; action: string; rcpt: string }
  | { kind: 'mda'; action: string; rcpt: string; user: UserInfo; subaddress?: string; target?: { kind: 'command' | 'file'; value: string } };

export type ExpandResult = { ok: true; leaves: Leaf[] } | { ok: false; temporary: boolean; reply: WireReply };

export interface ExpandInput {
  config: Config;
  tables: TableSet;
  facts: SessionFacts;
  sender: string;
  /** The text of a user's `~/.forward`, or null; read by the parent, which alone may enter homes. */
  forward(user: UserInfo): Promise<string | null>;
}

class Refusal extends Error {
  constructor(readonly temporary: boolean, readonly reply: WireReply) {
    super(reply.text);
  }
}

const unknownUser = () => new Refusal(false, { code: 550, enhanced: '5.1.1', text: 'Invalid recipient' });
const tempfail = (why: string) => new Refusal(true, { code: 451, enhanced: '4.2.4', text: `Temporary failure in expansion: ${why}` });

export async function expand(input: ExpandInput, rcpt: string, actionName: string): Promise<ExpandResult> {
  const run = new Expansion(input);
  try {
    await run.address(rcpt, actionName, 0);
  } catch (err) {
    if (err instanceof Refusal) return { ok: false, temporary: err.temporary, reply: err.reply };
    return { ok: false, temporary: true, reply: tempfail((err as Error).message).reply };
  }
  if (run.leaves.length === 0) return { ok: false, temporary: false, reply: { code: 524, enhanced: '5.2.4', text: 'Mailing list expansion problem' } };
  return { ok: true, leaves: run.leaves };
}

function split(address: string): [string, string] {
  const at = address.lastIndexOf('@');
  return at < 0 ? [address, ''] : [address.slice(0, at), address.slice(at + 1).toLowerCase()];
}

class Expansion {
  readonly leaves: Leaf[] = [];
  private readonly seen = new Set<string>();

  constructor(private readonly input: ExpandInput) {}

  private action(name: string): Action {
    const action = this.input.config.actions.get(name);
    if (!action) throw tempfail(`action ${name} is not defined`);
    return action;
  }

  /**
   * A leaf is kept once per dest: the same user reached through two addresses is two deliveries
   * (expand_cmp tells nodes apart by their address ancestor), through one address it is one.
   */
  private leaf(leaf: Leaf): void {
    const key = JSON.stringify(leaf);
    if (this.seen.has(key)) return;
    if (this.leaves.length >= MAX_LEAVES) throw new Refusal(false, { code: 550, enhanced: '5.3.4', text: 'Too many recipients after expansion' });
    this.seen.add(key);
    this.leaves.push(leaf);
  }

  /** An address node: remote actions end here; local ones go through virtual or become a user. */
  async address(rcpt: string, actionName: string, depth: number): Promise<void> {
    if (depth > MAX_DEPTH) throw new Refusal(false, { code: 550, enhanced: '5.4.6', text: 'Alias expansion loop or too deep' });
    trace('expand', null, 'lka', { address: rcpt, action: actionName, depth });
    const action = this.action(actionName);
    if (action.method.kind === 'relay') return this.leaf({ kind: 'mta', action: actionName, rcpt });
    const [local, domain] = split(rcpt);
    if (action.virtual) {
      const targets = await this.virtualLookup(action.virtual, local, domain);
      if (!targets) throw unknownUser();
      return this.targets(targets, action, depth + 1, null, rcpt);
    }
    return this.user(local.toLowerCase(), action, depth, rcpt);
  }

  /** table(5) virtual order: user+tag@domain, user@domain, user+tag, user, @domain, @. */
  private async virtualLookup(name: string, local: string, domain: string): Promise<ExpandTarget[] | undefined> {
    const table = this.table(name);
    const lower = local.toLowerCase();
    const bare = this.stripTag(lower).user;
    const keys = [`${lower}@${domain}`, `${bare}@${domain}`, lower, bare, `@${domain}`, '@'];
    for (const key of [...new Set(keys)]) {
      const hit = await table.lookupAlias(key);
      if (hit) return hit;
    }
    return undefined;
  }

  private stripTag(user: string): { user: string; tag?: string } {
    const delim = this.input.config.smtp.subAddrDelim;
    const at = delim ? user.indexOf(delim) : -1;
    return at <= 0 ? { user } : { user: user.slice(0, at), tag: user.slice(at + delim.length) };
  }

  private table(name: string) {
    const table = this.input.tables.get(name);
    if (!table) throw tempfail(`table ${name} is not available`);
    return table;
  }

  /** A user node: alias, then the user base, then `~/.forward`, else the user's mailbox. */
  private async user(name: string, action: Action, depth: number, rcpt: string, fromForwardOf?: string): Promise<void> {
    if (depth > MAX_DEPTH) throw new Refusal(false, { code: 550, enhanced: '5.4.6', text: 'Alias expansion loop or too deep' });
    const { user, tag } = this.stripTag(name);
    if (action.alias && fromForwardOf !== user) {
      const aliases = this.table(action.alias);
      const hit = (await aliases.lookupAlias(name)) ?? (tag !== undefined ? await aliases.lookupAlias(user) : undefined);
      if (hit) return this.targets(hit, action, depth + 1, null, rcpt, user);
    }
    const info = await this.userinfo(action, user);
    if (!info) throw unknownUser();
    // dest is the nearest address ancestor, not the user (lka_submit: lka_find_ancestor(xn,
    // EXPAND_ADDRESS)): every address mapped to one vmail user keeps its own %{dest}
    const mailbox: Leaf = { kind: 'mda', action: action.name, rcpt, user: info, ...(tag ? { subaddress: tag } : {}) };
    if (action.user || fromForwardOf === user) return this.leaf(mailbox);
    const forward = await this.readForward(info);
    if (!forward) {
      if (action.method.kind === 'forward-only' || action.method.kind === 'expand-only') throw unknownUser();
      return this.leaf(mailbox);
    }
    return this.targets(forward, action, depth + 1, info, rcpt, user);
  }

  private async readForward(user: UserInfo): Promise<ExpandTarget[] | null> {
    let text: string | null;
    try {
      text = await this.input.forward(user);
    } catch (err) {
      throw tempfail((err as Error).message);
    }
    const targets = text === null ? [] : parseLines(text);
    return targets.length ? targets : null;
  }

  private async userinfo(action: Action, user: string): Promise<UserInfo | undefined> {
    return this.table(action.userbase ?? 'getpwnam').lookupUserinfo(user);
  }

  private async targets(targets: ExpandTarget[], action: Action, depth: number, owner: UserInfo | null, rcpt: string, self?: string): Promise<void> {
    for (const t of targets) {
      switch (t.kind) {
        case 'username':
          await this.user(t.value.toLowerCase(), action, depth, rcpt, owner ? self : undefined);
          break;
        case 'address':
          await this.rerouted(t.value, depth);
          break;
        case 'include':
          await this.targets(await readInclude(t.value), action, depth + 1, owner, rcpt, self);
          break;
        case 'command':
        case 'file':
          await this.program(t, action, owner, rcpt);
          break;
        case 'error':
          throw new Refusal(t.code < 500, { code: t.code, enhanced: t.enhanced ?? (t.code < 500 ? '4.0.0' : '5.0.0'), text: t.text });
      }
    }
  }

  /** An address from an alias or a forward file: the ruleset decides again, as `from local`. */
  private async rerouted(address: string, depth: number): Promise<void> {
    const { config, tables, facts, sender } = this.input;
    const outcome = await evaluateRules(config, tables, { facts, sender, rcpt: address, internal: true });
    if (outcome.kind === 'tempfail') throw tempfail(outcome.reason);
    if (outcome.kind === 'reject') throw new Refusal(false, { code: 550, enhanced: '5.7.1', text: `Invalid recipient in expansion: ${address}` });
    await this.address(address, outcome.action, depth + 1);
  }

  /** `|command` and `/file` run as the forward file's owner, else as the action's or nobody. */
  private async program(t: { kind: 'command' | 'file'; value: string }, action: Action, owner: UserInfo | null, rcpt: string): Promise<void> {
    if (action.method.kind === 'forward-only') throw new Refusal(false, { code: 550, enhanced: '5.7.1', text: 'forward-only action cannot deliver to a command or file' });
    if (owner?.uid === 0) throw new Refusal(false, { code: 550, enhanced: '5.7.1', text: 'commands and files are refused in root\'s .forward' });
    const runAs = owner ?? (await this.userinfo(action, action.user ?? 'nobody'));
    if (!runAs) throw tempfail('no unprivileged user to run the alias command as');
    this.leaf({ kind: 'mda', action: action.name, rcpt, user: runAs, target: { kind: t.kind, value: t.value } });
  }
}

async function readInclude(path: string): Promise<ExpandTarget[]> {
  if (!path.startsWith('/')) throw tempfail(`:include: path is not absolute: ${path}`);
  const st = await lstat(path).catch(() => null);
  if (!st?.isFile() || st.size > MAX_FORWARD_BYTES) throw tempfail(`cannot read :include: ${path}`);
  return parseLines(await readFile(path, 'utf8'));
}

function parseLines(text: string): ExpandTarget[] {
  const out: ExpandTarget[] = [];
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith('#')) continue;
    out.push(...parseAliasValue(trimmed));
  }
  return out;
}
