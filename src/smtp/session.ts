/**
 * One SMTP server session: reads command lines through the LineReader, answers them strictly
 * in order (so pipelined commands get their replies in sequence), and asks the lka over the bus
 * where a command needs a decision. Any failure to reach a peer role answers 451: the client
 * keeps its mail and retries, nothing is ever acknowledged that is not stored.
 */
import type { Socket } from 'node:net';
import type { Endpoint } from '../bus/bus.js';
import type { SessionFacts } from '../bus/messages.js';
import type { Config, Listener } from '../config/types.js';
import { log } from '../log.js';
import { LineReader } from './line-reader.js';
import { formatReply, REPLIES, type Reply } from './reply.js';
import type { SessionLimits } from './limits.js';

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
  private readonly queue: string[] = [];
  private running = false;
  private errors = 0;

  constructor(
    readonly id: string,
    private readonly socket: Socket,
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
      tls: false,
      socket: local,
    };
  }

  start(): void {
    this.socket.setTimeout(this.deps.limits.idleTimeoutMs);
    this.socket.on('timeout', () => this.close(REPLIES.timeout, 'timeout'));
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', () => this.close(null, 'error'));
    this.socket.on('close', () => this.close(null, 'disconnect'));
    log('info', this.id, 'smtp', 'connected', { address: this.facts.clientAddress, port: this.facts.clientPort, listener: this.deps.listenerIndex });
    this.reply({ code: 220, text: `${this.deps.hostname} ESMTP tsmtpd` });
  }

  /** Close with a last reply (shutdown, timeout, limits); idempotent. */
  close(last: Reply | null, reason: string): void {
    if (this.state === State.Closed) return;
    this.state = State.Closed;
    if (last && this.socket.writable) this.socket.end(formatReply(last));
    else this.socket.destroy();
    log('info', this.id, 'smtp', 'disconnected', { reason });
    this.deps.onClose(this);
  }

  private onData(chunk: Buffer): void {
    for (const event of this.reader.push(chunk)) {
      this.queue.push(event.kind === 'line' ? event.line : '\0too-long');
    }
    if (this.queue.length > this.deps.limits.maxPipelined) this.socket.pause();
    void this.drain();
  }

  /** Answer queued commands one at a time, in order, even when an answer waits on the bus. */
  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0 && this.state !== State.Closed) {
        const line = this.queue.shift()!;
        const reply = line === '\0too-long' ? REPLIES.lineTooLong : await this.command(line);
        if (this.isClosed()) break;
        if (reply.code >= 500 && reply.code !== 502 && ++this.errors >= this.deps.limits.maxErrors) {
          this.reply(reply);
          return this.close(REPLIES.tooManyErrors, 'too-many-errors');
        }
        if (reply.code === 221) return this.close(reply, 'quit');
        this.reply(reply);
      }
      if (this.state !== State.Closed) this.socket.resume();
    } finally {
      this.running = false;
    }
  }

  private async command(line: string): Promise<Reply> {
    const space = line.indexOf(' ');
    const verb = (space < 0 ? line : line.slice(0, space)).toUpperCase();
    const arg = space < 0 ? '' : line.slice(space + 1).trim();
    if (CONTROL_CHARS.test(line)) return REPLIES.argsSyntax;
    switch (verb) {
      case 'HELO':
      case 'EHLO':
        return this.helo(verb, arg);
      case 'NOOP':
        return REPLIES.ok;
      case 'RSET':
        return arg ? REPLIES.argsSyntax : REPLIES.ok;
      case 'QUIT':
        return REPLIES.bye;
      case 'HELP':
        return { code: 214, enhanced: '2.0.0', text: ['This is tsmtpd', 'To report bugs in the implementation, please contact the project'] };
      case 'VRFY':
        return REPLIES.vrfy;
      case 'EXPN':
        return REPLIES.notImplemented;
      case 'MAIL':
        return this.mail(arg);
      case 'RCPT':
      case 'DATA':
      case 'BDAT':
        return this.state === State.Greeted ? REPLIES.badSequence : REPLIES.heloFirst;
      default:
        return REPLIES.syntax;
    }
  }

  private helo(verb: 'HELO' | 'EHLO', arg: string): Reply {
    if (!arg || !isHeloArgument(arg)) return { code: 501, enhanced: '5.5.4', text: `Syntax: ${verb} hostname` };
    this.facts.helo = arg;
    this.state = State.Greeted;
    const greeting = `${this.deps.hostname} Hello ${arg} [${this.facts.clientAddress}], pleased to meet you`;
    if (verb === 'HELO') return { code: 250, text: greeting };
    return {
      code: 250,
      text: [greeting, '8BITMIME', 'ENHANCEDSTATUSCODES', `SIZE ${this.deps.config.smtp.maxMessageSize}`, 'PIPELINING', 'HELP'],
    };
  }

  /** MAIL needs the lka's verdict on the sender; without one the honest answer is 451. */
  private async mail(arg: string): Promise<Reply> {
    if (this.state !== State.Greeted) return REPLIES.heloFirst;
    const m = /^FROM:\s*<([^<>]*)>(?:\s+(.*))?$/i.exec(arg);
    if (!m) return { code: 501, enhanced: '5.5.4', text: 'Syntax: MAIL FROM:<address>' };
    try {
      const res = await this.deps.bus.request('smtp.mailfrom.check', { facts: this.facts, sender: m[1]! });
      if (res.result !== 'accept') return { code: res.reply.code, enhanced: res.reply.enhanced, text: res.reply.text };
      return { code: 250, enhanced: '2.1.0', text: 'Ok' };
    } catch (err) {
      log('warn', this.id, 'smtp', 'failed-command', { command: 'MAIL', error: (err as Error).message });
      return REPLIES.tempfail;
    }
  }

  /** A method, not a field test: the state changes across the await above (shutdown, timeout). */
  private isClosed(): boolean {
    return this.state === State.Closed;
  }

  private reply(reply: Reply): void {
    if (this.socket.writable) this.socket.write(formatReply(reply));
  }
}
