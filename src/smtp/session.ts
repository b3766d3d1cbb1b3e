/**
 * One SMTP server session: frames the client's bytes (command lines, DATA bodies, BDAT chunks),
 * answers strictly in order so pipelined commands get their replies in sequence, and asks the
 * lka and the queue over the bus wherever a decision or storage is needed. A peer that cannot
 * answer means 451: the client keeps its mail, nothing unstored is ever acknowledged.
 */
import type { Socket } from 'node:net';
import type { Endpoint } from '../bus/bus.js';
import type { SessionFacts } from '../bus/messages.js';
import type { Config, Listener } from '../config/types.js';
import type { Clock } from '../clock.js';
import { log } from '../log.js';
import { BDAT_COMMAND, LineReader, type FrameEvent } from './line-reader.js';
import { formatReply, REPLIES, type Reply } from './reply.js';
import type { SessionLimits } from './limits.js';
import { Transaction } from './transaction.js';
import { addressKey, parseForwardPath, parseReversePath } from './address.js';
import { parseMailParams, parseRcptParams } from './params.js';
import { traceHeader, submissionHeaders } from './trace.js';
import { acceptTls, tlsDetails, type ListenerTls, type TlsDetails } from './tls.js';
import { SaslExchange, type SaslStep } from './sasl.js';
import { FilterLineTooLong, SessionFilters } from './filter-client.js';
import type { FilterPhase } from '../config/types.js';
import type { PhaseVerdict } from '../filter/engine.js';

/** Bytes a client may send ahead while its DATA line is being answered. */
const MAX_HELD_BYTES = 1024 * 1024;

export enum State {
  Connected,
  Greeted,
  Closed,
}

export interface SessionDeps {
  bus: Endpoint;
  config: Config;
  listener: Listener;
  listenerIndex: number;
  hostname: string;
  limits: SessionLimits;
  clock: Clock;
  /** The listener's TLS setup; null when it offers none. */
  tls: ListenerTls | null;
  onClose(session: Session): void;
}

/** Forbidden in any command argument: they would let a client smuggle lines into logs or peers. */
const CONTROL_CHARS = /[\x00-\x08\x0a-\x1f\x7f]/;
const DOMAIN = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$/;
const ADDRESS_LITERAL = /^\[(?:\d{1,3}(?:\.\d{1,3}){3}|IPv6:[0-9A-Fa-f:.]+)\]$/;

export function isHeloArgument(arg: string): boolean {
  return DOMAIN.test(arg) || ADDRESS_LITERAL.test(arg);
}

export class Session {
  state = State.Connected;
  readonly facts: SessionFacts;
  private readonly reader = new LineReader();
  private readonly events: FrameEvent[] = [];
  private running = false;
  private errors = 0;
  private mails = 0;
  private tx: Transaction | null = null;
  /** The reply owed at the end of the current BDAT chunk (RFC 3030 answers after the octets). */
  private chunkReply: Reply | null = null;
  private chunkLast = false;
  private tls: TlsDetails | null = null;
  /** An AUTH exchange waiting for the client's next line. */
  private sasl: SaslExchange | null = null;
  private readonly filters: SessionFilters;
  /** A filter marked the whole session as spam (at connect or HELO): every message is junk. */
  private junk = false;
  /** A filter said `disconnect`: the reply being sent is the last. */
  private closing = false;

  constructor(
    readonly id: string,
    private socket: Socket,
    private readonly deps: SessionDeps,
  ) {
    const local = deps.listener.kind === 'socket';
    this.facts = {
      sessionId: id,
      listener: deps.listenerIndex,
      clientAddress: local ? 'local' : (socket.remoteAddress ?? '').replace(/^::ffff:/, ''),
      clientPort: socket.remotePort ?? 0,
      localAddress: local ? 'local' : (socket.localAddress ?? '').replace(/^::ffff:/, ''),
      localPort: socket.localPort ?? 0,
      ...(deps.listener.tag ? { tag: deps.listener.tag } : {}),
      tls: false,
      socket: local,
    };
    this.filters = new SessionFilters(deps.bus, this.facts, deps.listener.filter !== undefined);
  }

  start(): void {
    log('info', this.id, 'smtp', 'connected', { address: this.facts.clientAddress, port: this.facts.clientPort, listener: this.deps.listenerIndex });
    if (this.deps.listener.tls === 'smtps' && this.deps.tls) {
      // SMTPS: the handshake comes before the banner
      this.socket.on('error', () => this.close(null, 'error'));
      void this.startTls().then((ok) => (ok ? this.greet() : undefined));
      return;
    }
    this.attach();
    this.socket.pause();
    void this.greet();
  }

  private attach(): void {
    const s = this.socket;
    s.setTimeout(this.deps.limits.idleTimeoutMs);
    s.on('timeout', () => this.close(REPLIES.timeout, 'timeout'));
    s.on('data', (chunk: Buffer) => this.onData(chunk));
    s.on('error', () => this.close(null, 'error'));
    s.on('close', () => this.close(null, 'disconnect'));
  }

  /** Hand the connection to TLS; false (and the session closed) when the handshake fails. */
  private async startTls(): Promise<boolean> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('timeout');
    plain.removeAllListeners('close');
    try {
      this.socket = await acceptTls(plain, this.deps.tls!, this.deps.limits.idleTimeoutMs);
    } catch (err) {
      log('info', this.id, 'smtp', 'tls', { result: 'failed', error: (err as Error).message });
      this.close(null, 'tls-failed');
      return false;
    }
    plain.removeAllListeners('error');
    plain.on('error', () => undefined);
    this.tls = tlsDetails(this.socket as import('node:tls').TLSSocket);
    this.facts.tls = true;
    log('info', this.id, 'smtp', 'tls', { version: this.tls.version, cipher: this.tls.cipher, verified: this.tls.verified });
    this.filters.report('link-tls', [`${this.tls.version}:${this.tls.cipher}:${this.tls.bits}`]);
    this.attach();
    return !this.isClosed();
  }

  /** The lka's reverse lookup comes first: rules and filters may match on it from the start. */
  private async greet(): Promise<void> {
    if (!this.facts.socket) {
      try {
        const r = await this.deps.bus.request('smtp.session.connect', { facts: this.facts });
        if (r.rdns) this.facts.rdns = r.rdns;
        this.facts.fcrdns = r.fcrdns;
      } catch {
        this.facts.fcrdns = 'error';
      }
    }
    if (this.isClosed()) return;
    const f = this.facts;
    const endpoint = (a: string, port: number) => (f.socket ? 'unix:socket' : a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`);
    this.filters.report('link-connect', [f.rdns ?? '', f.fcrdns === 'pass' ? 'pass' : 'fail', endpoint(f.clientAddress, f.clientPort), endpoint(f.localAddress, f.localPort)]);
    const refused = this.refusal(await this.filters.phase('connect'));
    if (this.isClosed()) return;
    // a connection a filter refuses gets its reply instead of the banner, and ends
    if (refused.reply) return this.close(refused.reply, 'filter');
    this.junk = refused.junk;
    this.reply({ code: 220, text: `${this.deps.hostname} ESMTP tsmtpd` });
    this.filters.report('link-greeting', [this.deps.hostname]);
    this.socket.resume();
  }

  /** Close with a last reply (shutdown, timeout, limits); idempotent. */
  close(last: Reply | null, reason: string): void {
    if (this.state === State.Closed) return;
    this.state = State.Closed;
    if (last && this.socket.writable) this.socket.end(formatReply(last));
    else this.socket.destroy();
    if (this.tx) this.filters.report('tx-rollback', [this.tx.txid]);
    void this.tx?.rollback(this.deps.bus);
    this.tx = null;
    if (reason === 'timeout') this.filters.report('timeout');
    this.filters.report('link-disconnect');
    this.deps.bus.notify('smtp.session.close', { sessionId: this.id });
    log('info', this.id, 'smtp', 'disconnected', { reason });
    this.deps.onClose(this);
  }

  private onData(chunk: Buffer): void {
    this.events.push(...this.reader.push(chunk));
    // read-ahead is bounded: queued events, and bytes held back while a DATA line is answered
    if (this.events.length > this.deps.limits.maxPipelined || this.reader.pending() > MAX_HELD_BYTES) this.socket.pause();
    void this.drain();
  }

  /** Handle queued events one at a time, in order, even when an answer waits on the bus. */
  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.events.length > 0 && !this.isClosed()) {
        const reply = await this.handle(this.events.shift()!);
        if (this.isClosed() || !reply) continue;
        if (reply.code >= 500 && reply.code !== 502 && ++this.errors >= this.deps.limits.maxErrors) {
          this.reply(reply);
          return this.close(REPLIES.tooManyErrors, 'too-many-errors');
        }
        if (reply.code === 221 || reply.code === 421 || this.closing) return this.close(reply, reply.code === 221 ? 'quit' : this.closing ? 'filter' : 'error');
        this.reply(reply);
      }
      if (!this.isClosed()) this.socket.resume();
    } finally {
      this.running = false;
    }
  }

  private async handle(ev: FrameEvent): Promise<Reply | null> {
    // every event kind is handled: the compiler checks the switch is exhaustive
    switch (ev.kind) {
      case 'line': {
        // credentials never leave the session, not even to a filter
        this.filters.report('protocol-client', [this.sasl ? '********' : /^AUTH\s/i.test(ev.line) ? ev.line.replace(/^(AUTH\s+\S+).*$/i, '$1 ********') : ev.line]);
        if (this.sasl) return this.saslStep(this.sasl.next(ev.line));
        const reply = await this.command(ev.line);
        // a DATA or STARTTLS line stops the framer; unless the command started a body, read on
        if (this.reader.held) this.events.push(...this.reader.resume());
        return reply;
      }
      case 'too-long':
        return REPLIES.lineTooLong;
      case 'data':
      case 'chunk':
        return this.body(ev.data);
      case 'data-end':
        return this.endData(ev);
      case 'chunk-end':
        return this.endChunk();
    }
  }

  /** Body bytes go to the queue file; the socket waits while the disk catches up. */
  private async body(data: Buffer): Promise<null> {
    const tx = this.tx;
    if (!tx || this.chunkReply) return null;
    if (tx.filtered) {
      if (!tx.account(data.length) || tx.filterError) return null;
      this.socket.pause();
      await tx.filtered.push(data).catch((err: Error) => (tx.filterError = err));
    } else if (!tx.write(data)) {
      this.socket.pause();
      await tx.drained();
    }
    return null;
  }

  private async command(line: string): Promise<Reply | null> {
    const space = line.indexOf(' ');
    const verb = (space < 0 ? line : line.slice(0, space)).toUpperCase();
    const arg = space < 0 ? '' : line.slice(space + 1).trim();
    if (verb === 'BDAT') return this.bdat(arg);
    if (CONTROL_CHARS.test(line)) return REPLIES.argsSyntax;
    const gate = this.gate(verb);
    if (gate) return gate;
    switch (verb) {
      case 'STARTTLS':
        return this.starttls(arg);
      case 'AUTH':
        return this.auth(arg);
      case 'HELO':
      case 'EHLO':
        return this.helo(verb, arg);
      case 'NOOP':
        return this.simple('noop', REPLIES.ok);
      case 'RSET': {
        if (arg) return REPLIES.argsSyntax;
        const refused = await this.simple('rset', null);
        if (refused) return refused;
        if (this.tx) this.filters.report('tx-reset', [this.tx.txid]);
        await this.reset();
        return REPLIES.ok;
      }
      case 'QUIT':
        return this.simple('quit', REPLIES.bye);
      case 'HELP':
        return this.simple('help', { code: 214, enhanced: '2.0.0', text: ['This is tsmtpd', 'To report bugs in the implementation, please contact the project'] });
      case 'VRFY':
        return REPLIES.vrfy;
      case 'EXPN':
        return REPLIES.notImplemented;
      case 'MAIL':
        return this.mail(arg);
      case 'RCPT':
        return this.rcpt(arg);
      case 'DATA':
        return this.data(arg);
      default:
        return REPLIES.syntax;
    }
  }

  /** Checks every command passes before its own: TLS required first, AUTH required before mail. */
  private gate(verb: string): Reply | null {
    const { listener } = this.deps;
    const always = ['EHLO', 'HELO', 'STARTTLS', 'NOOP', 'RSET', 'QUIT', 'HELP'];
    if (listener.tls === 'require' && !this.facts.tls && !always.includes(verb)) {
      return { code: 530, enhanced: '5.7.0', text: 'Must issue a STARTTLS command first' };
    }
    if (listener.auth === 'required' && !this.facts.authUser && (verb === 'MAIL' || verb === 'RCPT' || verb === 'DATA')) {
      return { code: 530, enhanced: '5.7.0', text: 'Authentication required' };
    }
    return null;
  }

  private offersStarttls(): boolean {
    return !!this.deps.tls && this.deps.listener.tls !== 'smtps' && !this.facts.tls;
  }

  /** AUTH only where credentials cannot be read off the wire: over TLS, or on the local socket. */
  private offersAuth(): boolean {
    return this.deps.listener.auth !== 'none' && (this.facts.tls || this.facts.socket);
  }

  /** STARTTLS: reply 220, drop whatever the client sent after the command (CVE-2011-0411), handshake. */
  private async starttls(arg: string): Promise<Reply | null> {
    if (arg) return REPLIES.argsSyntax;
    if (this.facts.tls) return REPLIES.badSequence;
    if (!this.offersStarttls()) return REPLIES.notImplemented;
    if (this.state !== State.Greeted) return REPLIES.heloFirst;
    const refused = this.refusal(await this.filters.phase('starttls'));
    if (refused.reply) return refused.reply;
    this.reader.discard();
    this.events.length = 0;
    this.reply({ code: 220, enhanced: '2.0.0', text: 'Ready to start TLS' });
    this.socket.pause();
    if (!(await this.startTls())) return null;
    // RFC 3207 §4.2: the client starts over and must say EHLO again
    await this.reset();
    this.state = State.Connected;
    delete this.facts.helo;
    return null;
  }

  private async auth(arg: string): Promise<Reply | null> {
    if (!this.offersAuth()) return REPLIES.notImplemented;
    if (this.state !== State.Greeted) return REPLIES.heloFirst;
    if (this.facts.authUser) return { code: 503, enhanced: '5.5.1', text: 'Invalid command: Already authenticated' };
    if (this.tx) return REPLIES.badSequence;
    const refused = this.refusal(await this.filters.phase('auth', arg.split(' ')[0]!));
    if (refused.reply) return refused.reply;
    const started = SaslExchange.start(arg);
    if (!started) return { code: 504, enhanced: '5.5.4', text: 'Unrecognized authentication type' };
    this.sasl = started.exchange;
    return this.saslStep(started.step);
  }

  private async saslStep(step: SaslStep): Promise<Reply> {
    if (step.kind === 'challenge') return { code: 334, text: step.text };
    this.sasl = null;
    if (step.kind === 'done') return step.reply;
    try {
      const res = await this.deps.bus.request('smtp.auth.check', { sessionId: this.id, listener: this.deps.listenerIndex, user: step.user, password: step.password });
      log('info', this.id, 'smtp', 'auth', { user: step.user, result: res.result === 'pass' ? 'ok' : res.result === 'fail' ? 'permfail' : 'tempfail' });
      this.filters.report('link-auth', [res.result === 'pass' ? 'pass' : res.result === 'fail' ? 'fail' : 'error', step.user]);
      if (res.result === 'pass') {
        this.facts.authUser = step.user;
        return { code: 235, enhanced: '2.0.0', text: 'Authentication succeeded' };
      }
      if (res.result === 'fail') return { code: 535, enhanced: '5.7.8', text: 'Authentication failed' };
      return { code: 454, enhanced: '4.7.0', text: 'Temporary authentication failure' };
    } catch (err) {
      return this.failed('AUTH', err);
    }
  }

  private async reset(): Promise<void> {
    const tx = this.tx;
    this.tx = null;
    await tx?.rollback(this.deps.bus);
  }

  private async helo(verb: 'HELO' | 'EHLO', given: string): Promise<Reply> {
    if (!given || !isHeloArgument(given)) return { code: 501, enhanced: '5.5.4', text: `Syntax: ${verb} hostname` };
    const v = this.refusal(await this.filters.phase(verb === 'HELO' ? 'helo' : 'ehlo', given));
    if (v.reply) return v.reply;
    const arg = v.param;
    this.junk ||= v.junk;
    void this.reset();
    this.facts.helo = arg;
    this.filters.report('link-identify', [verb, arg]);
    this.state = State.Greeted;
    const greeting = `${this.deps.hostname} Hello ${arg} [${this.facts.clientAddress}], pleased to meet you`;
    if (verb === 'HELO') return { code: 250, text: greeting };
    const { config, listener } = this.deps;
    return {
      code: 250,
      text: [
        greeting, '8BITMIME', 'ENHANCEDSTATUSCODES', `SIZE ${config.smtp.maxMessageSize}`,
        ...(listener.noDsn ? [] : ['DSN']), 'SMTPUTF8', 'CHUNKING', 'PIPELINING',
        ...(this.offersStarttls() ? ['STARTTLS'] : []), ...(this.offersAuth() ? ['AUTH PLAIN LOGIN'] : []), 'HELP',
      ],
    };
  }

  private async mail(arg: string): Promise<Reply> {
    if (this.state !== State.Greeted) return REPLIES.heloFirst;
    if (this.tx) return { code: 503, enhanced: '5.5.1', text: 'Invalid command: Transaction already in progress' };
    if (this.mails >= this.deps.config.smtp.maxMails) return { code: 452, enhanced: '4.5.3', text: 'Too many messages for this session' };
    const m = /^FROM:(.*)$/i.exec(arg);
    if (!m) return { code: 501, enhanced: '5.5.4', text: 'Syntax: MAIL FROM:<address>' };
    const smtputf8 = /(?:^|\s)SMTPUTF8(?:\s|$)/i.test(m[1]!);
    const path = parseReversePath(m[1]!, { smtputf8 });
    if (!path.ok) return path.reply;
    const params = parseMailParams(path.params, { dsn: !this.deps.listener.noDsn });
    if (!params.ok) return params.reply;
    const max = this.deps.config.smtp.maxMessageSize;
    if (params.value.size !== undefined && params.value.size > max) return { code: 552, enhanced: '5.3.4', text: 'Message size exceeds fixed maximum message size' };
    const v = this.refusal(await this.filters.phase('mail-from', addressKey(path.address)));
    if (v.reply) return v.reply;
    const sender = v.param;
    const tx = new Transaction(this.id, sender, params.value, max);
    tx.junk = this.junk || v.junk;
    this.filters.report('tx-begin', [tx.txid]);
    try {
      const res = await this.deps.bus.request('smtp.mailfrom.check', { facts: this.facts, sender });
      if (res.result !== 'accept') {
        this.filters.report('tx-mail', [tx.txid, res.reply.code >= 500 ? 'permfail' : 'tempfail', sender]);
        this.filters.report('tx-reset', [tx.txid]);
        return toReply(res.reply);
      }
    } catch (err) {
      this.filters.report('tx-mail', [tx.txid, 'tempfail', sender]);
      this.filters.report('tx-reset', [tx.txid]);
      return this.failed('MAIL', err);
    }
    this.filters.report('tx-mail', [tx.txid, 'ok', sender]);
    this.tx = tx;
    return { code: 250, enhanced: '2.0.0', text: 'Ok' };
  }

  private async rcpt(arg: string): Promise<Reply> {
    if (this.state !== State.Greeted) return REPLIES.heloFirst;
    const tx = this.tx;
    if (!tx) return { code: 503, enhanced: '5.5.1', text: 'Invalid command: No transaction in progress' };
    if (tx.opened) return REPLIES.badSequence;
    if (tx.rcpts.length >= this.deps.config.smtp.maxRcpt) return { code: 452, enhanced: '4.5.3', text: 'Too many recipients' };
    const m = /^TO:(.*)$/i.exec(arg);
    if (!m) return { code: 501, enhanced: '5.5.4', text: 'Syntax: RCPT TO:<address>' };
    const path = parseForwardPath(m[1]!, { smtputf8: tx.params.smtputf8 });
    if (!path.ok) return path.reply;
    const params = parseRcptParams(path.params, { dsn: !this.deps.listener.noDsn });
    if (!params.ok) return params.reply;
    // `<Postmaster>` without a domain is this server's postmaster (RFC 5321 §4.1.1.3)
    const v = this.refusal(await this.filters.phase('rcpt-to', path.address.asciiDomain ? addressKey(path.address) : `postmaster@${this.deps.hostname.toLowerCase()}`, tx.sender));
    if (v.reply) return v.reply;
    if (this.tx !== tx) return REPLIES.badSequence;
    const rcpt = v.param;
    tx.junk ||= v.junk;
    const dsn = { ...params.value, ...(tx.params.ret ? { ret: tx.params.ret } : {}), ...(tx.params.envid ? { envid: tx.params.envid } : {}) };
    try {
      const res = await this.deps.bus.request('smtp.rcpt.resolve', { facts: this.facts, sender: tx.sender, rcpt, dsn, smtputf8: tx.params.smtputf8 });
      if (res.result !== 'accept') {
        log('info', this.id, 'smtp', 'rcpt-refused', { from: `<${tx.sender}>`, to: `<${rcpt}>`, result: res.reply.code });
        this.filters.report('tx-rcpt', [tx.txid, res.reply.code >= 500 ? 'permfail' : 'tempfail', rcpt]);
        return toReply(res.reply);
      }
      if (this.tx !== tx) return REPLIES.badSequence;
      this.filters.report('tx-rcpt', [tx.txid, 'ok', rcpt]);
      tx.rcpts.push({ rcpt, dsn });
      return { code: 250, enhanced: '2.1.5', text: 'Destination address valid: Recipient ok' };
    } catch (err) {
      return this.failed('RCPT', err);
    }
  }

  /** DATA: open the queue file, then let the framer read the body (it held it back until now). */
  private async data(arg: string): Promise<Reply | null> {
    const refused = arg ? REPLIES.argsSyntax : this.dataRefusal() ?? (await this.dataPhase(this.tx!));
    if (refused) return refused;
    try {
      await this.openMessage(this.tx!);
    } catch (err) {
      this.filters.report('tx-data', [this.tx!.txid, 'tempfail']);
      return this.failed('DATA', err);
    }
    this.filters.report('tx-data', [this.tx!.txid, 'ok']);
    this.reply({ code: 354, text: 'Enter mail, end with "." on a line by itself' });
    this.events.push(...this.reader.startData());
    return null;
  }

  private dataRefusal(): Reply | null {
    if (this.state !== State.Greeted) return REPLIES.heloFirst;
    if (!this.tx) return { code: 503, enhanced: '5.5.1', text: 'Invalid command: No transaction in progress' };
    if (this.tx.rcpts.length === 0) return { code: 503, enhanced: '5.5.1', text: 'Invalid command: No recipient specified' };
    if (this.tx.chunking) return REPLIES.badSequence;
    return null;
  }

  /** The filters' data phase; when data-line filters want the body, it flows through them. */
  private async dataPhase(tx: Transaction): Promise<Reply | null> {
    const v = await this.filters.phase('data', '', tx.sender);
    const refused = this.refusal(v);
    if (refused.reply) return refused.reply;
    tx.junk ||= refused.junk;
    if (v.kind === 'proceed' && v.dataLine) tx.filtered = this.filters.body((bytes) => tx.store(bytes));
    return null;
  }

  private async openMessage(tx: Transaction): Promise<void> {
    const { listener } = this.deps;
    const submission = listener.kind === 'socket' || listener.auth !== 'none';
    // OpenSMTPD prepends X-Spam to a message a filter marked as junk
    const trace = (msgid: string) => traceHeader({
      facts: this.facts, hostname: this.deps.hostname, rcpts: tx.rcpts.map((r) => r.rcpt), msgid,
      smtputf8: tx.params.smtputf8, showAuth: listener.receivedAuth, now: new Date(this.deps.clock.now()),
      ...(this.tls ? { tls: this.tls } : {}),
    }) + (tx.junk ? 'X-Spam: yes\r\n' : '');
    const add = (missing: { messageId: boolean; date: boolean }) => submissionHeaders(missing, this.deps.hostname, new Date(this.deps.clock.now()));
    await tx.open(this.deps.bus, trace, submission ? add : null);
  }

  private async endData(flags: { bareLf: boolean; bareCr: boolean; longLine: boolean }): Promise<Reply> {
    const tx = this.tx;
    this.tx = null;
    if (!tx) return REPLIES.badSequence;
    return this.finish(tx, flags);
  }

  private async finish(tx: Transaction, flags: { bareLf: boolean; bareCr: boolean; longLine: boolean }): Promise<Reply> {
    if (tx.filtered && !tx.filterError && !tx.tooBig) await tx.filtered.end().catch((err: Error) => (tx.filterError = err));
    if (tx.filterError) {
      await tx.rollback(this.deps.bus);
      this.filters.report('tx-rollback', [tx.txid]);
      if (tx.filterError instanceof FilterLineTooLong) return { code: 550, enhanced: '5.5.2', text: 'Line too long for the filters' };
      return this.failed('DATA', tx.filterError);
    }
    const refusal = tx.refusal(flags) ?? this.refusal(await this.filters.phase('commit', '', tx.sender)).reply;
    if (refusal) {
      await tx.rollback(this.deps.bus);
      this.filters.report('tx-rollback', [tx.txid]);
      log('info', this.id, 'smtp', 'message-refused', { reason: String(refusal.text) });
      return refusal;
    }
    try {
      const reply = await tx.commit(this.deps.bus);
      this.filters.report(reply.code === 250 ? 'tx-commit' : 'tx-rollback', reply.code === 250 ? [tx.txid, String(tx.received)] : [tx.txid]);
      if (reply.code === 250) {
        this.mails++;
        this.deps.bus.notify('stat.increment', { key: 'smtp.message', labels: { listener: String(this.deps.listenerIndex) } }, () => undefined);
        log('info', this.id, 'smtp', 'message', {
          msgid: tx.msgid, from: `<${tx.sender}>`, nrcpt: tx.rcpts.length, size: tx.received,
        });
      }
      return reply;
    } catch (err) {
      await tx.rollback(this.deps.bus);
      this.filters.report('tx-rollback', [tx.txid]);
      return this.failed('DATA', err);
    }
  }

  /** BDAT: the octets follow whatever the reply, so the framer reads them; we answer after. */
  private async bdat(arg: string): Promise<Reply | null> {
    const m = BDAT_COMMAND.exec(`BDAT ${arg}`);
    // without a valid size the octets that follow cannot be told from commands: end the session
    if (!m) return { code: 421, enhanced: '4.5.4', text: 'Malformed BDAT, closing connection' };
    this.chunkLast = m[2] !== undefined;
    this.chunkReply = this.bdatRefusal();
    if (this.chunkReply) return null;
    const tx = this.tx!;
    tx.chunking = true;
    if (!tx.opened) {
      this.chunkReply = await this.dataPhase(tx);
      if (this.chunkReply) return null;
      try {
        await this.openMessage(tx);
      } catch (err) {
        this.chunkReply = this.failed('BDAT', err);
      }
    }
    return null;
  }

  private bdatRefusal(): Reply | null {
    if (this.state !== State.Greeted) return REPLIES.heloFirst;
    if (!this.tx) return { code: 503, enhanced: '5.5.1', text: 'Invalid command: No transaction in progress' };
    if (this.tx.rcpts.length === 0) return { code: 503, enhanced: '5.5.1', text: 'Invalid command: No recipient specified' };
    return null;
  }

  private async endChunk(): Promise<Reply | null> {
    const refused = this.chunkReply;
    this.chunkReply = null;
    const tx = this.tx;
    if (refused || !tx) {
      // a refused chunk spoils the message it belonged to (RFC 3030 §2)
      if (tx?.opened) await this.reset();
      return refused ?? REPLIES.badSequence;
    }
    if (!this.chunkLast) return { code: 250, enhanced: '2.0.0', text: `${tx.received} octets received` };
    this.tx = null;
    // BDAT carries the body as it is: there is no dot-stuffing and line endings are the client's
    return this.finish(tx, { bareLf: false, bareCr: false, longLine: false });
  }

  private failed(command: string, err: unknown): Reply {
    log('warn', this.id, 'smtp', 'failed-command', { command, error: (err as Error).message });
    return REPLIES.tempfail;
  }

  /** A method, not a field test: the state changes across awaits (shutdown, timeout). */
  private isClosed(): boolean {
    return this.state === State.Closed;
  }

  private reply(reply: Reply): void {
    const text = formatReply(reply);
    if (this.filters.enabled) for (const line of text.split('\r\n').slice(0, -1)) this.filters.report('protocol-server', [line]);
    if (this.socket.writable) this.socket.write(text);
  }

  /** A filter verdict as the session uses it: a reply when refused (`disconnect` also ends the session). */
  private refusal(v: PhaseVerdict): { reply: Reply | null; param: string; junk: boolean } {
    if (v.kind === 'proceed') return { reply: null, param: v.param, junk: v.junk };
    if (v.kind === 'disconnect') this.closing = true;
    return { reply: toReply(v.reply), param: '', junk: false };
  }

  /** NOOP, RSET, QUIT, HELP: the filters' phase first, then the command's own answer. */
  private async simple(phase: FilterPhase, ok: Reply): Promise<Reply>;
  private async simple(phase: FilterPhase, ok: null): Promise<Reply | null>;
  private async simple(phase: FilterPhase, ok: Reply | null): Promise<Reply | null> {
    return this.refusal(await this.filters.phase(phase)).reply ?? ok;
  }
}

function toReply(r: { code: number; enhanced?: string; text: string }): Reply {
  return { code: r.code, ...(r.enhanced ? { enhanced: r.enhanced } : {}), text: r.text };
}
