/**
 * One SMTP server session: frames the client's bytes (command lines, DATA bodies, BDAT chunks),
 * answers strictly in order so pipelined commands get their replies in sequence, and asks the
 * lka and the queue over the bus wherever a decision or storage is needed. A peer that cannot
 * answer means 451: the client keeps its mail, nothing unstored is ever acknowledged.
 *
 * The client may vanish at any await: every step that resumes after one checks `gone()` before
 * it touches the transaction or the socket, and a bug that still throws ends this session with
 * 421 at one boundary (`guard`), never the process.
 */
import type { Socket } from 'node:net';
import type { Endpoint } from '../bus/bus.js';
import type { SessionFacts } from '../bus/messages.js';
import type { Config, Listener } from '../config/types.js';
import type { Clock } from '../clock.js';
import { log, quoted } from '../log.js';
import { BDAT_COMMAND, LineReader, type FrameEvent } from './line-reader.js';
import { Deadline } from './deadline.js';
import { authFailurePauseMs } from './auth-failures.js';
import { formatReply, REPLIES, type Reply } from './reply.js';
import type { SessionLimits } from './limits.js';
import { Transaction } from './transaction.js';
import { addressKey, parseForwardPath, parseReversePath } from './address.js';
import { parseMailParams, parseRcptParams } from './params.js';
import { traceHeader, submissionHeaders } from './trace.js';
import { acceptTls, peerCertHash, tlsDetails, type ListenerTls, type TlsDetails } from './tls.js';
import { SaslExchange, type SaslStep } from './sasl.js';
import { addressText, commandLabel, logAccepted, logAuthentication, logConnected, logReply } from './session-log.js';
import { parseProxyV2 } from './proxy-v2.js';
import { FilterLineTooLong, SessionFilters } from './filter-client.js';
import type { FilterPhase } from '../config/types.js';
import type { PhaseVerdict } from '../filter/engine.js';
import { trace } from '../trace.js';

/** Bytes a client may send ahead while its DATA line is being answered. */
const MAX_HELD_BYTES = 1024 * 1024;

/** Where the protocol is; whether the session has ended is kept apart (`closed`), so no step can undo it. */
export enum State {
  Connected,
  Greeted,
}

/** Commands that cannot bring a message closer; too many in a row end the session. */
const JUNK_COMMANDS = new Set(['NOOP', 'RSET', 'HELP', 'VRFY', 'EXPN', 'HELO', 'EHLO']);

/** How long a closed session waits for the client to read its last reply and hang up. */
const LINGER_MS = 10_000;

/** proxy.c's PROXY_SESSION_TIMEOUT: the PROXY header must arrive within 300 seconds. */
const PROXY_SESSION_TIMEOUT_MS = 300_000;

export interface SessionDeps {
  bus: Endpoint;
  config: Config;
  listener: Listener;
  listenerIndex: number;
  hostname: string;
  limits: SessionLimits;
  clock: Clock;
  /** Network timers (deadlines, the AUTH failure pause, bans): real time, even when `clock` is fake. */
  timers: Clock;
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
  private closed = false;
  /** Settles when the session closes: what it waited for (disk, filters) may never answer then. */
  private readonly ended: Promise<void>;
  private markEnded!: () => void;
  /** The banner is out: from now on reading follows `flow()`. */
  private ready = false;
  /** The connect lookup, when the banner went out before it finished: the first command waits for it. */
  private pendingLookup: Promise<void> | null = null;
  private readonly reader = new LineReader();
  private readonly events: FrameEvent[] = [];
  private running = false;
  /** Replies held while more pipelined commands wait, sent together when the group is answered. */
  private batched = '';
  private batching = false;
  /** The session itself stopped reading while the disk or the filters take a body. */
  private holding = false;
  private readonly deadline: Deadline;
  /** What the deadline is timing: a command line, a body, or nothing. */
  private pacing: 'line' | 'body' | null = null;
  private errors = 0;
  private junkCommands = 0;
  private authFailures = 0;
  private mails = 0;
  /** The client said EHLO (`proto=ESMTP` in the message line). */
  private esmtp = false;
  private tx: Transaction | null = null;
  /** The reply owed at the end of the current BDAT chunk (RFC 3030 answers after the octets). */
  private chunkReply: Reply | null = null;
  private chunkLast = false;
  private tls: TlsDetails | null = null;
  /** The name the server gives this session: the listener's, or its `hostnames <t>` name for the local address. */
  private serverName: string;
  /** The command the next 4xx/5xx answers, as failed-command names it; null for a line too long to read. */
  private cmd: string | null = '';
  /** An AUTH exchange waiting for the client's next line. */
  private sasl: SaslExchange | null = null;
  private readonly filters: SessionFilters;
  /** A filter marked the whole session as spam (at connect or HELO): every message is junk. */
  private junk = false;
  /** Why the reply being sent is the last (a filter said `disconnect`, a limit was reached). */
  private closing: string | null = null;

  constructor(
    readonly id: string,
    private socket: Socket,
    private readonly deps: SessionDeps,
  ) {
    const local = deps.listener.kind === 'socket';
    this.serverName = deps.hostname;
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
    this.ended = new Promise((resolve) => (this.markEnded = resolve));
    this.deadline = new Deadline(deps.timers, this.guard(() => this.close(REPLIES.tooSlow, `too-slow-${this.pacing ?? 'client'}`)));
  }

  start(): void {
    // proxy.c: on a proxy-v2 listener the header comes first, before TLS and the banner
    if (this.deps.listener.proxyV2 && !this.facts.socket) {
      this.guard(async () => { if (await this.readProxyHeader()) this.begin(); })();
      return;
    }
    this.begin();
  }

  /**
   * The PROXY v2 header: the client's and the server's addresses become the session's facts
   * (PROXY), or stay the connection's own (LOCAL). A bad header, a hang-up or PROXY_SESSION_TIMEOUT
   * end the connection without a word, as proxy_error() does.
   */
  private readProxyHeader(): Promise<boolean> {
    const socket = this.socket;
    log('info', this.id, 'smtp', 'proxy', { address: addressText(this.facts) });
    return new Promise((resolve) => {
      let buf = Buffer.alloc(0);
      const finish = (reason: string | null) => {
        timer.cancel();
        socket.off('data', onData).off('end', onEnd).off('error', onEnd);
        socket.pause();
        if (reason !== null) {
          log('info', this.id, 'smtp', 'proxy', { event: 'closed', address: addressText(this.facts), reason: quoted(reason) });
          this.close(null, 'proxy');
        }
        resolve(reason === null);
      };
      const onData = (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        const h = parseProxyV2(buf);
        if (h.kind === 'need') return;
        if (h.kind === 'error') return finish(`protocol error (${h.reason})`);
        if (h.kind === 'proxy') {
          Object.assign(this.facts, {
            clientAddress: h.source.address, clientPort: h.source.port, localAddress: h.destination.address, localPort: h.destination.port,
          });
        }
        finish(null);
        // what followed the header is the client's first SMTP (or TLS) bytes
        if (buf.length > h.length) socket.unshift(buf.subarray(h.length));
      };
      const onEnd = () => finish('disconnected');
      const timer = this.deps.timers.setTimer(PROXY_SESSION_TIMEOUT_MS, () => finish('timeout'));
      socket.on('data', onData).once('end', onEnd).once('error', onEnd);
    });
  }

  private begin(): void {
    if (this.deps.listener.tls === 'smtps' && this.deps.tls) {
      // SMTPS: the handshake comes before the banner
      this.socket.on('error', () => this.close(null, 'error'));
      this.guard(async () => (await this.startTls()) && (await this.greet()))();
      return;
    }
    this.attach();
    this.socket.pause();
    this.guard(() => this.greet())();
  }

  /**
   * The session's one boundary: whatever runs from a socket event, a timer or a promise goes
   * through here, so a bug ends this session with 421 and a log line, never the process.
   */
  private guard<A extends unknown[]>(fn: (...args: A) => unknown): (...args: A) => void {
    return (...args) => {
      try {
        const result = fn(...args);
        if (result instanceof Promise) result.catch((err: unknown) => this.crash(err));
      } catch (err) {
        this.crash(err);
      }
    };
  }

  private crash(err: unknown): void {
    log('error', this.id, 'smtp', 'session-error', { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    try {
      this.close(REPLIES.internalError, 'internal-error');
    } catch {
      this.socket.destroy();
    }
  }

  private attach(): void {
    const s = this.socket;
    s.setTimeout(this.deps.limits.idleTimeoutMs);
    s.on('timeout', this.guard(() => this.close(REPLIES.timeout, 'timeout')));
    s.on('data', this.guard((chunk: Buffer) => this.onData(chunk)));
    // the client has read our replies: its next commands may be read
    s.on('drain', this.guard(() => this.flow()));
    s.on('error', this.guard(() => this.close(null, 'error')));
    s.on('close', this.guard(() => this.close(null, 'disconnect')));
  }

  /** Hand the connection to TLS; false (and the session closed) when the handshake fails. */
  private async startTls(): Promise<boolean> {
    const plain = this.socket;
    for (const event of ['data', 'timeout', 'close', 'drain']) plain.removeAllListeners(event);
    // SMTPS comes before the banner: nothing is read until greet() has sent it
    const greeted = this.ready;
    this.ready = false;
    let secure: import('node:tls').TLSSocket;
    try {
      secure = await acceptTls(plain, this.deps.tls!, this.deps.limits.idleTimeoutMs);
    } catch (err) {
      log('info', this.id, 'smtp', 'tls', { result: 'failed', error: (err as Error).message });
      this.close(null, 'tls-failed');
      return false;
    }
    if (this.closed) {
      secure.destroy();
      return false;
    }
    this.socket = secure;
    plain.removeAllListeners('error');
    plain.on('error', () => undefined);
    this.tls = tlsDetails(secure, this.deps.tls!.requestCert);
    this.facts.tls = true;
    // smtp_tls_started(): a client certificate is logged, `verified` only on a verify listener
    const fingerprint = peerCertHash(secure);
    if (fingerprint) log('info', this.id, 'smtp', 'cert-check', { result: quoted(this.tls.verified ? 'verified' : 'unchecked'), fingerprint: quoted(fingerprint) });
    // smtp_tls_started(): `ciphers=` in tls_to_text()'s version:cipher:bits
    const ciphers = `${this.tls.version}:${this.tls.cipher}:${this.tls.bits}`;
    log('info', this.id, 'smtp', 'tls', { ciphers });
    this.filters.report('link-tls', [ciphers]);
    this.attach();
    this.socket.pause();
    this.junkCommands = 0;
    this.ready = greeted;
    return true;
  }

  /**
   * The lka's reverse lookup comes first: rules and filters may match on it from the start. When
   * no filter waits for it and no `hostnames` table names the server in the banner, the banner
   * goes out while the lookup runs, and the first command waits for it instead (one round trip
   * less before the client can speak; everything that reads the facts still sees them complete).
   */
  private async greet(): Promise<void> {
    const lookup = this.lookUpClient();
    if (!this.filters.enabled && !this.deps.listener.hostnames) {
      this.pendingLookup = lookup;
      this.banner();
      return;
    }
    await lookup;
    if (this.closed) return;
    const refused = this.refusal(await this.filters.phase('connect'));
    if (this.closed) return;
    // a connection a filter refuses gets its reply instead of the banner, and ends
    if (refused.reply) return this.close(refused.reply, 'filter');
    this.junk = refused.junk;
    this.banner();
  }

  private banner(): void {
    this.reply({ code: 220, text: `${this.serverName} ESMTP tsmtpd` });
    this.filters.report('link-greeting', [this.serverName]);
    this.ready = true;
    this.flow();
  }

  /** smtp.session.connect: the client's name, the server's own name; logged and reported once known. */
  private async lookUpClient(): Promise<void> {
    if (!this.facts.socket) {
      try {
        const r = await this.deps.bus.request('smtp.session.connect', { facts: this.facts });
        if (r.rdns) this.facts.rdns = r.rdns;
        if (r.serverName) this.serverName = r.serverName;
        this.facts.fcrdns = r.fcrdns;
      } catch {
        this.facts.fcrdns = 'error';
      }
    }
    if (this.closed) return;
    logConnected(this.id, this.facts, this.serverName);
    const f = this.facts;
    const endpoint = (a: string, port: number) => (f.socket ? 'unix:socket' : a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`);
    this.filters.report('link-connect', [f.rdns ?? '', f.fcrdns === 'pass' ? 'pass' : 'fail', endpoint(f.clientAddress, f.clientPort), endpoint(f.localAddress, f.localPort)]);
  }

  /** Close with a last reply (shutdown, timeout, limits); idempotent. */
  close(last: Reply | null, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.markEnded();
    this.deadline.stop();
    const socket = this.socket;
    if (last && socket.writable) {
      logReply(this.id, this.cmd, last);
      socket.end(this.batched + formatReply(last));
      // keep reading (and dropping) so the last reply is not lost to a reset, but not for ever
      socket.resume();
      const linger = setTimeout(() => socket.destroy(), LINGER_MS).unref();
      socket.once('close', () => clearTimeout(linger));
    } else socket.destroy();
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
    if (this.closed) return;
    trace('io', this.id, 'smtp', { event: 'read', octets: chunk.length });
    const inBody = this.pacing === 'body';
    const events = this.reader.push(chunk);
    // a body earns time as it arrives
    if (inBody) this.deadline.credit((chunk.length * 1000) / this.deps.limits.minDataRate);
    this.queue(events);
    this.flow();
  }

  /** Queue framed events (a loop: one chunk of bare LFs is tens of thousands of them). */
  private queue(events: FrameEvent[]): void {
    for (const ev of events) {
      // a finished command line ends its deadline; the next line gets its own
      if (ev.kind === 'line' || ev.kind === 'too-long') {
        this.deadline.stop();
        this.pacing = null;
      }
      this.events.push(ev);
    }
  }

  /**
   * Reading follows what the session can take: it stops while too many commands wait for their
   * answers, while a body waits for the disk or the filters, and while the client leaves our
   * replies unread (back-pressure both ways: a client that never reads cannot make us buffer).
   */
  private flow(): void {
    if (this.closed || !this.ready) return;
    const backedUp = this.socket.writableNeedDrain;
    const full = this.events.length > this.deps.limits.maxPipelined || this.reader.pending() > MAX_HELD_BYTES;
    if (backedUp || full || this.holding) this.socket.pause();
    else this.socket.resume();
    this.pace();
    if (!this.running && !backedUp && this.events.length > 0) this.guard(() => this.drain())();
  }

  /** Start, run or hold the deadline: it runs only while the session waits for the client. */
  private pace(): void {
    const mode = this.reader.mode;
    const want = mode === 'data' || mode === 'chunk' ? 'body' : this.reader.midLine ? 'line' : null;
    if (want !== this.pacing) {
      this.pacing = want;
      if (want === null) this.deadline.stop();
      else this.deadline.start(want === 'body' ? this.deps.limits.idleTimeoutMs : this.deps.limits.commandTimeMs);
    }
    if (!this.running && this.events.length === 0 && !this.holding) this.deadline.run();
    else this.deadline.hold();
  }

  /** Handle queued events one at a time, in order, even when an answer waits on the bus. */
  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      // a client that does not read its replies gets no more until it does ('drain' resumes)
      while (this.events.length > 0 && !this.closed && !this.socket.writableNeedDrain) {
        const reply = await this.handle(this.events.shift()!);
        // replies to pipelined commands wait for the last of the group: one write (RFC 2920 §3.1)
        this.batching = this.events.length > 0;
        if (!this.closed && reply) this.answer(reply);
        this.batching = false;
      }
    } finally {
      this.running = false;
      this.batching = false;
      this.write('');
    }
    this.flow();
  }

  /** Send a command's reply; end the session where the reply or the error count says so. */
  private answer(reply: Reply): void {
    if (reply.code >= 500 && reply.code !== 502 && ++this.errors >= this.deps.limits.maxErrors) {
      this.reply(reply);
      return this.close(REPLIES.tooManyErrors, 'too-many-errors');
    }
    if (reply.code === 221 || reply.code === 421 || this.closing) return this.close(reply, reply.code === 221 ? 'quit' : (this.closing ?? 'error'));
    this.reply(reply);
  }

  /**
   * While the banner's lookup runs, EHLO and HELO are answered at once: they read nothing it gives
   * (filters would, and with filters the banner itself waits). Everything else waits for it, and
   * so does the logging of a refused EHLO, so that the `connected` line still comes first.
   */
  private async handle(ev: FrameEvent): Promise<Reply | null> {
    const lookup = this.pendingLookup;
    if (!lookup) return this.handleEvent(ev);
    const early = ev.kind === 'line' && !this.sasl && /^(?:EHLO|HELO)(?:\s|$)/i.test(ev.line);
    if (early) {
      const reply = await this.handleEvent(ev);
      if (reply && reply.code >= 400) await lookup;
      return reply;
    }
    await lookup;
    this.pendingLookup = null;
    return this.closed ? null : this.handleEvent(ev);
  }

  private async handleEvent(ev: FrameEvent): Promise<Reply | null> {
    // every event kind is handled: the compiler checks the switch is exhaustive
    switch (ev.kind) {
      case 'line': {
        // credentials never leave the session, not even to a filter
        this.filters.report('protocol-client', [this.sasl ? '********' : /^AUTH\s/i.test(ev.line) ? ev.line.replace(/^(AUTH\s+\S+).*$/i, '$1 ********') : ev.line]);
        this.cmd = this.sasl ? this.sasl.label : commandLabel(ev.line);
        if (ev.bareLf || ev.line.includes('\r')) return this.bareLineEnd(ev.line);
        if (this.sasl) return this.saslStep(this.sasl.next(ev.line));
        const reply = await this.command(ev.line);
        // a DATA or STARTTLS line stops the framer; unless the command started a body, read on
        if (this.reader.held && !this.closed) this.queue(this.reader.resume());
        return reply;
      }
      case 'too-long':
        this.cmd = null;
        return REPLIES.lineTooLong;
      case 'runaway':
        this.cmd = null;
        // OpenSMTPD's smtp_io: no LF within SMTP_LINE_MAX octets ends the session
        this.closing = 'line-too-long';
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

  /**
   * RFC 5321 §2.3.8: CR and LF only as CRLF. OpenSMTPD (iobuf_getline) takes a bare LF as a
   * line end; we refuse it as we refuse a bare CR, so no two parsers can disagree on where a
   * command ends. A BDAT line so ended cannot be trusted to frame its chunk: the session ends.
   */
  private bareLineEnd(line: string): Reply {
    this.sasl = null;
    if (/^BDAT /i.test(line)) {
      this.closing = 'bad-bdat';
      return REPLIES.malformedBdat;
    }
    return REPLIES.bareLineEnd;
  }

  /** Body bytes go to the queue file; the socket waits while the disk or the filters catch up. */
  private async body(data: Buffer): Promise<null> {
    const tx = this.tx;
    if (!tx || this.chunkReply) return null;
    // OpenSMTPD cuts a line at a NUL (smtp_tx_dataline reads C strings) and so may a filter, so
    // what is signed and what is delivered could differ: such a message is refused at its end
    // and nothing more of it is stored or shown to filters
    if (!tx.hasNul && data.includes(0)) tx.hasNul = true;
    if (tx.hasNul) return null;
    if (tx.filtered) {
      if (!tx.account(data.length) || tx.filterError) return null;
      await this.hold(tx.filtered.push(data).catch((err: Error) => (tx.filterError = err)));
    } else if (!tx.write(data)) {
      await this.hold(tx.drained());
    }
    return null;
  }

  /** Stop reading while the session waits on its own work; the work may never end if the session does. */
  private async hold(work: Promise<unknown>): Promise<void> {
    this.holding = true;
    this.socket.pause();
    try {
      await Promise.race([work, this.ended]);
    } finally {
      this.holding = false;
    }
  }

  private async command(line: string): Promise<Reply | null> {
    trace('smtp', this.id, 'smtp', { dir: '<<<', line: commandLabel(line) });
    const space = line.indexOf(' ');
    const verb = (space < 0 ? line : line.slice(0, space)).toUpperCase();
    const arg = space < 0 ? '' : line.slice(space + 1).trim();
    if (verb === 'BDAT') return this.bdat(arg);
    if (CONTROL_CHARS.test(line)) return REPLIES.argsSyntax;
    const gate = this.gate(verb);
    if (gate) return gate;
    if (JUNK_COMMANDS.has(verb) && ++this.junkCommands > this.deps.limits.maxJunkCommands) {
      this.closing = 'too-many-commands';
      this.deps.bus.notify('stat.increment', { key: 'smtp.kick' }, () => undefined);
      return REPLIES.tooManyCommands;
    }
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
    if (this.closed) return null;
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
    // RFC 4954 §4: not during a mail transaction
    if (this.tx) return REPLIES.authInTransaction;
    const refused = this.refusal(await this.filters.phase('auth', arg.split(' ')[0]!));
    if (this.closed) return null;
    if (refused.reply) return refused.reply;
    const started = SaslExchange.start(arg);
    if (!started) return { code: 504, enhanced: '5.5.4', text: 'Unrecognized authentication type' };
    this.sasl = started.exchange;
    return this.saslStep(started.step);
  }

  private async saslStep(step: SaslStep): Promise<Reply | null> {
    if (step.kind === 'challenge') return { code: 334, text: step.text };
    this.sasl = null;
    if (step.kind === 'done') return step.reply.code === 535 ? this.authFailed(step.reply) : step.reply;
    let result: 'pass' | 'fail' | 'error';
    try {
      ({ result } = await this.deps.bus.request('smtp.auth.check', { sessionId: this.id, listener: this.deps.listenerIndex, user: step.user, password: step.password }));
    } catch (err) {
      return this.failed('AUTH', err);
    }
    logAuthentication(this.id, step.user, result);
    this.filters.report('link-auth', [result, step.user]);
    if (result === 'fail') return this.authFailed(REPLIES.authFailed);
    if (result === 'error') return { code: 454, enhanced: '4.7.0', text: 'Temporary authentication failure' };
    if (this.closed) return null;
    this.facts.authUser = step.user;
    this.junkCommands = 0;
    return { code: 235, enhanced: '2.0.0', text: 'Authentication succeeded' };
  }

  /**
   * A refused password: counted per client address (stats, and by the lka for the ban, across
   * every worker), answered after OpenSMTPD's random pause (smtp_auth_failure_pause), and after a
   * few the session ends.
   */
  private async authFailed(reply: Reply): Promise<Reply | null> {
    const address = this.facts.clientAddress;
    this.deps.bus.notify('stat.increment', { key: 'smtp.auth.failure', labels: { address } });
    this.deps.bus.notify('smtp.auth.failure', { address });
    await new Promise<void>((resolve) => this.deps.timers.setTimer(authFailurePauseMs(), resolve));
    if (this.closed) return null;
    if (++this.authFailures < this.deps.limits.maxAuthFailures) return reply;
    this.reply(reply);
    this.closing = 'auth-failures';
    return REPLIES.tooManyAuthFailures;
  }

  private async reset(): Promise<void> {
    const tx = this.tx;
    this.tx = null;
    await tx?.rollback(this.deps.bus);
  }

  private async helo(verb: 'HELO' | 'EHLO', given: string): Promise<Reply | null> {
    if (!given || !isHeloArgument(given)) return { code: 501, enhanced: '5.5.4', text: `Syntax: ${verb} hostname` };
    const v = this.refusal(await this.filters.phase(verb === 'HELO' ? 'helo' : 'ehlo', given));
    if (this.closed) return null;
    if (v.reply) return v.reply;
    const arg = v.param;
    this.junk ||= v.junk;
    await this.reset();
    this.facts.helo = arg;
    this.esmtp = verb === 'EHLO';
    this.filters.report('link-identify', [verb, arg]);
    this.state = State.Greeted;
    const greeting = `${this.serverName} Hello ${arg} [${this.facts.clientAddress}], pleased to meet you`;
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

  /**
   * On the local socket a bare `<user>` is user@this listener's name, as smtp_mailaddr completes
   * it; network clients keep to RFC 5321's full addresses.
   */
  private completion(): { defaultDomain?: string } {
    return this.deps.listener.kind === 'socket' ? { defaultDomain: this.serverName.toLowerCase() } : {};
  }

  private async mail(arg: string): Promise<Reply | null> {
    if (this.state !== State.Greeted) return REPLIES.heloFirst;
    if (this.tx) return { code: 503, enhanced: '5.5.1', text: 'Invalid command: Transaction already in progress' };
    if (this.mails >= this.deps.config.smtp.maxMails) return { code: 452, enhanced: '4.5.3', text: 'Too many messages for this session' };
    const m = /^FROM:(.*)$/i.exec(arg);
    if (!m) return { code: 501, enhanced: '5.5.4', text: 'Syntax: MAIL FROM:<address>' };
    const smtputf8 = /(?:^|\s)SMTPUTF8(?:\s|$)/i.test(m[1]!);
    const path = parseReversePath(m[1]!, { smtputf8, ...this.completion() });
    if (!path.ok) return path.reply;
    const params = parseMailParams(path.params, { dsn: !this.deps.listener.noDsn });
    if (!params.ok) return params.reply;
    const max = this.deps.config.smtp.maxMessageSize;
    if (params.value.size !== undefined && params.value.size > max) return REPLIES.tooLarge;
    const v = this.refusal(await this.filters.phase('mail-from', addressKey(path.address)));
    if (this.closed) return null;
    if (v.reply) return v.reply;
    const sender = v.param;
    const tx = new Transaction(this.id, sender, params.value, max);
    tx.junk = this.junk || v.junk;
    this.filters.report('tx-begin', [tx.txid]);
    try {
      // as smtp_tx_mail_from(), the lka is asked only for an authenticated session on a listener
      // with a `senders` table; otherwise it takes the sender with the first RCPT (one trip less)
      const res = this.deps.listener.senders && this.facts.authUser
        ? await this.deps.bus.request('smtp.mailfrom.check', { facts: this.facts, sender })
        : { result: 'accept' as const };
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
    if (this.closed) return null;
    this.filters.report('tx-mail', [tx.txid, 'ok', sender]);
    tx.begin(this.deps.bus);
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
    const path = parseForwardPath(m[1]!, { smtputf8: tx.params.smtputf8, ...this.completion() });
    if (!path.ok) return path.reply;
    const params = parseRcptParams(path.params, { dsn: !this.deps.listener.noDsn });
    if (!params.ok) return params.reply;
    // `<Postmaster>` without a domain is this server's postmaster (RFC 5321 §4.1.1.3)
    const v = this.refusal(await this.filters.phase('rcpt-to', path.address.asciiDomain ? addressKey(path.address) : `postmaster@${this.serverName.toLowerCase()}`, tx.sender));
    if (v.reply) return v.reply;
    if (this.tx !== tx) return REPLIES.badSequence;
    const rcpt = v.param;
    tx.junk ||= v.junk;
    const dsn = { ...params.value, ...(tx.params.ret ? { ret: tx.params.ret } : {}), ...(tx.params.envid ? { envid: tx.params.envid } : {}) };
    try {
      const msgid = await tx.message(this.deps.bus);
      if (this.tx !== tx) return REPLIES.badSequence;
      const res = await this.deps.bus.request('smtp.rcpt.resolve', { facts: this.facts, msgid, sender: tx.sender, rcpt, dsn, smtputf8: tx.params.smtputf8 });
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
    const refused = arg ? REPLIES.argsSyntax : this.dataRefusal();
    if (refused) return refused;
    const tx = this.tx!;
    const filtered = await this.dataPhase(tx);
    if (filtered || this.gone(tx)) return filtered;
    try {
      await this.openMessage(tx);
    } catch (err) {
      this.filters.report('tx-data', [tx.txid, 'tempfail']);
      return this.failed('DATA', err);
    }
    // the client left while the queue made the file: close() could not drop what was not there yet
    if (this.gone(tx)) return this.dropOrphan(tx);
    this.filters.report('tx-data', [tx.txid, 'ok']);
    this.reply({ code: 354, text: 'Enter mail, end with "." on a line by itself' });
    this.queue(this.reader.startData());
    return null;
  }

  /** The session ended or moved on while `tx` was being worked on. */
  private gone(tx: Transaction): boolean {
    return this.closed || this.tx !== tx;
  }

  private async dropOrphan(tx: Transaction): Promise<null> {
    await tx.rollback(this.deps.bus);
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
    if (this.gone(tx)) return null;
    const refused = this.refusal(v);
    if (refused.reply) return refused.reply;
    tx.junk ||= refused.junk;
    if (v.kind === 'proceed' && v.dataLine) tx.filtered = this.filters.body((bytes) => tx.store(bytes));
    return null;
  }

  private async openMessage(tx: Transaction): Promise<void> {
    const { listener } = this.deps;
    // Date and Message-ID are added on the local socket and on port 587 alone (smtp_tx_dataline)
    const submission = listener.kind === 'socket' || listener.port === 587;
    // smtp_message_begin(): `X-Spam: Yes` first when a filter marked the message as junk, then
    // Received; both go through the data-line filters when there are any (smtp_filter_printf)
    const trace = (msgid: string) => (tx.junk ? 'X-Spam: Yes\r\n' : '') + traceHeader({
      facts: this.facts, hostname: this.serverName, rcpts: tx.rcpts.map((r) => r.rcpt), msgid,
      smtputf8: tx.params.smtputf8, showAuth: listener.receivedAuth, maskSource: listener.maskSrc, esmtp: this.esmtp,
      now: new Date(this.deps.clock.now()),
      ...(this.tls ? { tls: this.tls } : {}),
    });
    // Message-ID and the completed addresses name the listener (listener->hostname), not the
    // per-address name Received: gives
    const add = (missing: { messageId: boolean; date: boolean }) => submissionHeaders(missing, this.deps.hostname, new Date(this.deps.clock.now()));
    // senders <t> masquerade: an authenticated user's From: names the sender MAIL FROM was allowed
    const masquerade = listener.senders?.masquerade && this.facts.authUser && tx.sender !== '' ? tx.sender : null;
    await tx.open(this.deps.bus, trace, { addHeaders: submission ? add : null, domain: this.deps.hostname, masquerade });
  }

  private async endData(flags: { bareLf: boolean; bareCr: boolean; longLine: boolean }): Promise<Reply> {
    const tx = this.tx;
    this.tx = null;
    if (!tx) return REPLIES.badSequence;
    return this.finish(tx, flags);
  }

  private async finish(tx: Transaction, flags: { bareLf: boolean; bareCr: boolean; longLine: boolean }): Promise<Reply> {
    if (tx.filtered && !tx.filterError && !tx.tooBig && !tx.hasNul) await tx.filtered.end().catch((err: Error) => (tx.filterError = err));
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
    if (this.closed) {
      // the client left before its message was acknowledged: it still has it and will send it again
      await tx.rollback(this.deps.bus);
      this.filters.report('tx-rollback', [tx.txid]);
      return REPLIES.tempfail;
    }
    try {
      const reply = await tx.commit(this.deps.bus);
      this.filters.report(reply.code === 250 ? 'tx-commit' : 'tx-rollback', reply.code === 250 ? [tx.txid, String(tx.received)] : [tx.txid]);
      if (reply.code === 250) {
        this.mails++;
        this.junkCommands = 0;
        this.deps.bus.notify('stat.increment', { key: 'smtp.message', labels: { listener: String(this.deps.listenerIndex) } }, () => undefined);
        logAccepted(this.id, {
          msgid: tx.msgid!, size: tx.received, rcpts: tx.rcpts.map((r) => r.rcpt), esmtp: this.esmtp, sender: tx.sender, envelopes: tx.envelopes,
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
    if (!m) return REPLIES.malformedBdat;
    this.chunkLast = m[2] !== undefined;
    this.chunkReply = this.bdatRefusal(Number(m[1]));
    if (this.chunkReply) return null;
    const tx = this.tx!;
    tx.chunking = true;
    if (!tx.opened) {
      this.chunkReply = await this.dataPhase(tx);
      if (this.chunkReply || this.gone(tx)) return null;
      try {
        await this.openMessage(tx);
      } catch (err) {
        this.chunkReply = this.failed('BDAT', err);
      }
      if (this.gone(tx)) return this.dropOrphan(tx);
    }
    return null;
  }

  private bdatRefusal(size: number): Reply | null {
    if (this.state !== State.Greeted) return REPLIES.heloFirst;
    if (!this.tx) return { code: 503, enhanced: '5.5.1', text: 'Invalid command: No transaction in progress' };
    if (this.tx.rcpts.length === 0) return { code: 503, enhanced: '5.5.1', text: 'Invalid command: No recipient specified' };
    // refused with the chunk that would pass the limit, not at LAST (the size is announced)
    if (this.tx.received + size > this.deps.config.smtp.maxMessageSize) return REPLIES.tooLarge;
    return null;
  }

  private async endChunk(): Promise<Reply | null> {
    const refused = this.chunkReply;
    this.chunkReply = null;
    const tx = this.tx;
    if (refused || !tx) {
      // a refused chunk spoils the message it belonged to (RFC 3030 §2): later chunks find no transaction
      if (tx) await this.reset();
      return refused ?? REPLIES.badSequence;
    }
    if (!this.chunkLast) return { code: 250, enhanced: '2.0.0', text: `${tx.received} octets received` };
    this.tx = null;
    // BDAT carries the body as it is: there is no dot-stuffing and line endings are the client's
    return this.finish(tx, { bareLf: false, bareCr: false, longLine: false });
  }

  private failed(command: string, err: unknown): Reply {
    log('warn', this.id, 'smtp', 'session-error', { command, error: (err as Error).message });
    return REPLIES.tempfail;
  }

  private reply(reply: Reply): void {
    logReply(this.id, this.cmd, reply);
    const text = formatReply(reply);
    trace('smtp', this.id, 'smtp', { dir: '>>>', line: text.split('\r\n')[0] });
    if (this.filters.enabled) for (const line of text.split('\r\n').slice(0, -1)) this.filters.report('protocol-server', [line]);
    if (this.batching) this.batched += text;
    else this.write(text);
  }

  /** Whatever replies were held back go first. */
  private write(text: string): void {
    const out = this.batched + text;
    this.batched = '';
    if (out && this.socket.writable) this.socket.write(out);
  }

  /** A filter verdict as the session uses it: a reply when refused (`disconnect` also ends the session). */
  private refusal(v: PhaseVerdict): { reply: Reply | null; param: string; junk: boolean } {
    if (v.kind === 'proceed') return { reply: null, param: v.param, junk: v.junk };
    if (v.kind === 'disconnect') this.closing = 'filter';
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
