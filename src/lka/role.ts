/**
 * The lka role (lookup agent): owns the tables and the resolver, and answers the smtp role's
 * questions — the client's reverse name, AUTH, MAIL FROM and, above all, what to do with each
 * RCPT TO: the ruleset, then expansion into final envelopes, which it sends to the queue's
 * message before the 250 (lka_submit()). It also answers the mta's lookups in the tables of
 * relay actions.
 */
import type { Role } from '../bus/bus.js';
import { PEERS, type Origin, type Req, type Res, type SessionFacts } from '../bus/messages.js';
import type { Config } from '../config/types.js';
import type { RoleContext } from '../daemon/context.js';
import { createResolver, fcrdnsCheck } from '../dns/index.js';
import type { Resolver } from '../dns/resolver.js';
import { log } from '../log.js';
import type { Envelope } from '../queue/envelope.js';
import { openTables } from '../table/table.js';
import type { TableSet } from '../table/types.js';
import { checkPassword } from './auth.js';
import { AuthFailures } from './auth-failures.js';
import { CryptPool } from './crypt-pool.js';
import { expand, type Leaf } from './expand.js';
import { relayTableUse } from './relay-tables.js';
import { listenerServerName } from './server-name.js';
import { LkaSessions } from './sessions.js';
import { evaluateRules } from './ruleset.js';
import { checkSender } from './senders.js';
import { isSrsAddress, srsDecode, type SrsResult } from '../srs/srs.js';
import { FilterEngine } from '../filter/engine.js';

export interface LkaOptions {
  /** Tests hand in a resolver pointed at their own DNS server. */
  resolver?: Resolver;
}

export interface LkaRole extends Role<'lka'> {
  /** A worker went away: its sessions, and what they had staged, go with it. */
  peerDown(process: string): void;
}

export function createLkaRole(ctx: RoleContext, opts: LkaOptions = {}): LkaRole {
  let config = ctx.config;
  const sessions = new LkaSessions();
  const crypt = new CryptPool();
  const ban = ctx.config.smtp.authBan;
  const authFailures = new AuthFailures(ban ? { failures: ban.failures, windowMs: ban.window * 1000, banMs: ban.duration * 1000 } : null, ctx.clock);
  let tables: TableSet | null = null;
  let resolver: Resolver | null = opts.resolver ?? null;

  const needTables = (): TableSet => {
    if (!tables) throw new Error('lka is not started');
    return tables;
  };
  let filters: FilterEngine | null = null;
  const needFilters = (): FilterEngine => {
    if (!filters) throw new Error('lka is not started');
    return filters;
  };

  /** Every RCPT decision counted per action (or `reject`), as `lka.rcpt{action,result}`. */
  async function resolveRcpt(req: RcptQuery): Promise<Res<'queue.bounce.resolve'>> {
    const res = await decideRcpt(req);
    const action = res.result === 'accept' ? (res.envelopes[0]?.action ?? '') : '';
    ctx.bus.notify('stat.increment', { key: 'lka.rcpt', labels: { action, result: res.result } });
    return res;
  }

  /** The session's facts with what the lka itself knows in place of the worker's word: the authenticated user. */
  function vouched(facts: SessionFacts, origin: Origin): SessionFacts {
    const authUser = sessions.authUser(origin.process, facts.sessionId);
    const { authUser: _claimed, ...rest } = facts;
    return authUser ? { ...rest, authUser } : rest;
  }

  async function mailFrom(req: Req<'smtp.mailfrom.check'>, _from: unknown, origin: Origin): Promise<Res<'smtp.mailfrom.check'>> {
    const facts = vouched(req.facts, origin);
    const res = await checkSender(config, needTables(), facts, req.sender);
    if (res.result === 'accept') sessions.begin(origin.process, facts.sessionId, req.sender);
    return res;
  }

  /** RCPT for the session's transaction: the envelopes go to the queue's message; the worker only hears the verdict. */
  async function rcptTo(req: Req<'smtp.rcpt.resolve'>, _from: unknown, origin: Origin): Promise<Res<'smtp.rcpt.resolve'>> {
    const facts = vouched(req.facts, origin);
    let sender = sessions.sender(origin.process, facts.sessionId, req.msgid);
    if (sender === undefined) {
      // MAIL came here only when a `senders` table had to vouch for it (smtp_tx_mail_from);
      // without one, the first RCPT begins the transaction with the worker's sender
      if (needsSenderCheck(config, facts)) return { result: 'reject', reply: { code: 503, enhanced: '5.5.1', text: 'Invalid command: No transaction in progress' } };
      sender = req.sender;
      sessions.begin(origin.process, facts.sessionId, sender, req.msgid);
    }
    const res = await resolveRcpt({ ...req, facts, sender });
    if (res.result !== 'accept') return res;
    // lka_submit(): the envelopes go to the queue's message before the client hears 250, so the
    // commit finds them there (the worker never carries one)
    ctx.bus.notify('lka.envelopes.stage', { worker: origin.process, msgid: req.msgid, envelopes: res.envelopes });
    return { result: 'accept' };
  }

  async function auth(req: Req<'smtp.auth.check'>, _from: unknown, origin: Origin): Promise<Res<'smtp.auth.check'>> {
    const system = (user: string, password: string) => ctx.bus.request('lka.auth.system', { user, password });
    const res = await checkPassword(config, needTables(), req, crypt, system);
    if (res.result === 'pass') sessions.authenticated(origin.process, req.sessionId, req.user);
    return res;
  }

  /** The mta's lookups, only in the tables its relay actions name and for the use they name them. */
  async function relayLookup(req: Req<'mta.table.lookup'>): Promise<Res<'mta.table.lookup'>> {
    if (!relayTableUse(config).has(`${req.table}|${req.service}`)) throw new Error(`table ${req.table} is not a ${req.service} table of a relay action`);
    const table = needTables().get(req.table);
    if (!table) throw new Error(`no table ${req.table}`);
    let value: string | undefined;
    if (req.service === 'source') value = await table.fetchSource();
    else if (req.service === 'credentials') value = (await table.lookupCredentials(req.key))?.hash;
    else value = await table.lookupString(req.service, req.key);
    return value === undefined ? { found: false } : { found: true, value };
  }

  async function decideRcpt(req: RcptQuery): Promise<Res<'queue.bounce.resolve'>> {
    const t = needTables();
    const srs = srsReturn(config, req, Math.floor(ctx.clock.now() / 1000));
    if (srs && !srs.ok) return { result: 'reject', reply: { code: 550, enhanced: '5.7.1', text: `Invalid SRS address: ${srs.reason}` } };
    // a bounce to an SRS address we made goes back to the original sender, as mail from us
    const rcpt = srs ? srs.address : req.rcpt;
    const outcome = await evaluateRules(config, t, { facts: req.facts, sender: req.sender, rcpt, internal: !!srs });
    if (outcome.kind === 'tempfail') {
      log('warn', req.facts.sessionId, 'lka', 'ruleset', { error: outcome.reason });
      return { result: 'tempfail', reply: { code: 451, enhanced: '4.3.0', text: 'Temporary failure' } };
    }
    if (outcome.kind === 'reject') {
      // OpenSMTPD's wording; 5.7.1 because this is where a relay attempt ends
      return { result: 'reject', reply: { code: 550, enhanced: '5.7.1', text: 'Invalid recipient' } };
    }
    const forward = async (user: { username: string; uid: number; gid: number; directory: string }) => {
      const res = await ctx.bus.request('lka.forward.read', { username: user.username, uid: user.uid, gid: user.gid, home: user.directory });
      if (res.result === 'error') throw new Error(res.error);
      return res.result === 'ok' ? res.text : null;
    };
    const result = await expand({ config, tables: t, facts: req.facts, sender: req.sender, forward }, rcpt, outcome.action);
    if (!result.ok) return { result: result.temporary ? 'tempfail' : 'reject', reply: result.reply };
    return { result: 'accept', envelopes: result.leaves.map((leaf) => envelopeOf(config, ctx, req, leaf)) };
  }

  return {
    name: 'lka',
    peers: PEERS.lka,
    peerDown: (process) => sessions.dropProcess(process),
    handlers: {
      'smtp.session.connect': async ({ facts }) => ({ ...(await reverse(resolver, facts)), ...(await listenerServerName(config, needTables(), facts)) }),
      'smtp.auth.check': auth,
      'smtp.mailfrom.check': mailFrom,
      'smtp.rcpt.resolve': rcptTo,
      'smtp.tx.reset': ({ sessionId }, _from, origin) => sessions.reset(origin.process, sessionId),
      'smtp.session.close': ({ sessionId }, _from, origin) => sessions.close(origin.process, sessionId),
      'smtp.auth.failure': ({ address }) => {
        const durationMs = authFailures.record(address);
        if (durationMs === null) return;
        log('warn', null, 'lka', 'banned', { address, reason: 'auth-failures' });
        ctx.bus.notify('lka.auth.ban', { address, durationMs });
      },
      'mta.table.lookup': relayLookup,
      'smtp.filter.phase': (req) => needFilters().phase(req),
      'smtp.filter.report': async ({ facts, event, params }) => needFilters().report(facts, event, params),
      'smtp.filter.data': async ({ facts, lines, end }) => ({ lines: await needFilters().data(facts, lines, end) }),
      // a report to the sender is routed as local mail from the null sender would be
      'queue.bounce.resolve': async ({ rcpt }) => resolveRcpt({ facts: internalFacts(config), sender: '', rcpt, dsn: { notify: ['NEVER'] }, smtputf8: false }),
      // a table that fails to reload keeps its old contents: say why, change nothing
      'control.table.update': async ({ name }) => {
        try {
          await needTables().update(name);
          log('info', null, 'lka', 'table-update', { table: name });
          return { result: 'ok' };
        } catch (err) {
          log('warn', null, 'lka', 'table-error', { table: name, error: (err as Error).message });
          return { result: 'error', error: (err as Error).message };
        }
      },
      'control.config.reload': async (req) => {
        const next = await openTables(req.config, ctx.serverName);
        const old = tables;
        config = req.config;
        tables = next;
        await old?.close();
      },
    },
    async start() {
      tables = await openTables(config, ctx.serverName);
      resolver ??= createResolver(config, ctx.clock);
      filters = new FilterEngine({
        config, tables: needTables, resolver, now: () => ctx.clock.now(),
        increment: (key, labels) => ctx.bus.notify('stat.increment', { key, labels }),
        ...(ctx.spawnFilter ? { spawn: ctx.spawnFilter } : {}),
      });
      await filters.start();
    },
    async stop() {
      await filters?.stop();
      filters = null;
      await tables?.close();
      tables = null;
      await crypt.close();
      if (!opts.resolver) resolver?.close();
    },
  };
}

/** SRS decoding applies to null-sender mail for SRS addresses, when an `srs key` is configured. */
function srsReturn(config: Config, req: RcptQuery, nowSec: number): SrsResult | null {
  if (!config.srs?.key || req.sender !== '' || !isSrsAddress(req.rcpt)) return null;
  const keys = [config.srs.key, ...(config.srs.backupKey ? [config.srs.backupKey] : [])];
  return srsDecode(req.rcpt, keys, nowSec, config.srs.ttl);
}

async function reverse(resolver: Resolver | null, facts: SessionFacts): Promise<Res<'smtp.session.connect'>> {
  if (facts.socket || !resolver) return { fcrdns: 'error' };
  const result = await fcrdnsCheck(resolver, facts.clientAddress);
  return { ...(result.rdns ? { rdns: result.rdns } : {}), fcrdns: result.fcrdns };
}

/** A recipient to resolve: a session's RCPT, or a bounce's (which has no message yet). */
type RcptQuery = Omit<Req<'smtp.rcpt.resolve'>, 'msgid'>;

/** Whether MAIL FROM must be vouched for by the listener's `senders` table (an authenticated session). */
function needsSenderCheck(config: Config, facts: SessionFacts): boolean {
  return !!config.listeners[facts.listener]?.senders && !!facts.authUser;
}

function internalFacts(config: Config): SessionFacts {
  const socket = Math.max(0, config.listeners.findIndex((l) => l.kind === 'socket'));
  return {
    sessionId: '0000000000000000', listener: socket, clientAddress: 'local', clientPort: 0,
    localAddress: 'local', localPort: 0, tls: false, socket: true,
  };
}

function envelopeOf(config: Config, ctx: RoleContext, req: RcptQuery, leaf: Leaf): Omit<Envelope, 'id' | 'msgid'> {
  const { facts } = req;
  const action = config.actions.get(leaf.action);
  const listener = config.listeners[facts.listener];
  return {
    kind: leaf.kind,
    action: leaf.action,
    ...(facts.tag ? { tag: facts.tag } : {}),
    hostname: listener?.hostname ?? ctx.serverName,
    helo: facts.helo ?? '',
    clientAddress: facts.clientAddress,
    ...(facts.rdns ? { clientRdns: facts.rdns } : {}),
    ...(facts.authUser ? { authUser: facts.authUser } : {}),
    sender: req.sender,
    rcpt: leaf.rcpt,
    origRcpt: req.rcpt,
    ...(leaf.kind === 'mda' ? { user: leaf.user } : {}),
    ...(leaf.kind === 'mda' && leaf.target ? { mdaTarget: leaf.target } : {}),
    ...(leaf.kind === 'mda' && leaf.subaddress ? { subaddress: leaf.subaddress } : {}),
    dsn: req.dsn,
    smtputf8: req.smtputf8,
    junk: false,
    createdAt: Math.floor(ctx.clock.now() / 1000),
    ttl: action?.ttl ?? config.queue.ttl,
    tries: 0,
    lastTry: 0,
    lastWarn: 0,
  };
}
