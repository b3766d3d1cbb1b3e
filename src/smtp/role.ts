/**
 * The smtp role: sessions. It takes untrusted input, so it holds no table, no queue file and no
 * envelope: every decision is a message to the lka or the queue. In the daemon it runs as N
 * unprivileged worker processes that accept on the TCP sockets the parent binds (`acceptOn`),
 * and the parent hands them the UNIX socket's connections (`adopt`); when all roles share one
 * process (tests), it opens the listeners itself.
 */
import { randomHex } from '../random-hex.js';
import { createServer, type Server, type Socket } from 'node:net';
import type { Role } from '../bus/bus.js';
import { PEERS } from '../bus/messages.js';
import type { RoleContext } from '../daemon/context.js';
import { EMPTY_KEYRING, loadKeyring } from '../daemon/keyring.js';
import { log } from '../log.js';
import { systemClock, type Clock } from '../clock.js';
import { Admission } from './admission.js';
import { SESSION_LIMITS, type SessionLimits } from './limits.js';
import { openListener } from './listener.js';
import { formatReply, REPLIES, type Reply } from './reply.js';
import { Session } from './session.js';
import { acceptTls, listenerTls, type ListenerTls } from './tls.js';
import type { Admitted } from './worker-admission.js';

/** How long a refused SMTPS client gets to finish its handshake before it is simply dropped. */
const REFUSAL_HANDSHAKE_MS = 10_000;

export { isLoopback } from './admission.js';

export function newSessionId(): string {
  return randomHex(8);
}

export interface SmtpRole extends Role<'smtp'> {
  /** Serve a connection accepted elsewhere (the parent) on listener `index`; `onEnd` when its session ends. */
  adopt(socket: Socket, index: number, onEnd: () => void): void;
  /** Turn away a connection accepted elsewhere with `reply` (over TLS on an SMTPS listener). */
  refuse(socket: Socket, index: number, reply: Reply): void;
  /**
   * Accept on listener `index`'s socket, bound by the parent (daemon/shared-listeners.ts);
   * `admit` asks the parent, which counts every worker's sessions, before the banner.
   */
  acceptOn(handle: unknown, index: number, admit: (address: string) => Admitted | Promise<Admitted>): Promise<void>;
  /** In-process only: who may open a session on the listeners this role opened. */
  readonly admission: Admission;
}

export interface SmtpRoleOptions {
  /** Tests hand in their own limits; otherwise smtpd.conf's `smtp timeout` and `smtp limit` apply. */
  limits?: SessionLimits;
  /** The parent accepts connections and hands them over; the role opens no listener. */
  adoptOnly?: boolean;
  /** The clock of the network timers (deadlines, the AUTH failure pause); a fake one in tests. */
  timers?: Clock;
}

export function sessionLimits(ctx: Pick<RoleContext, 'config'>): SessionLimits {
  const s = ctx.config.smtp;
  return {
    ...SESSION_LIMITS,
    idleTimeoutMs: s.timeout * 1000,
    commandTimeMs: s.maxCommandTime * 1000,
    minDataRate: s.minDataRate,
    maxSessions: s.maxSessions,
    maxSessionsPerAddress: s.maxSessionsPerAddress,
  };
}

export function createSmtpRole(ctx: RoleContext, given?: SessionLimits | SmtpRoleOptions, clock?: Clock): SmtpRole {
  const opts: SmtpRoleOptions = given && 'idleTimeoutMs' in given ? { limits: given, ...(clock ? { timers: clock } : {}) } : (given ?? {});
  const limits = opts.limits ?? sessionLimits(ctx);
  const timers = opts.timers ?? systemClock;
  const admission = new Admission(limits, timers);
  const servers: Server[] = [];
  const sessions = new Set<Session>();
  // built at start: a pki that cannot be used stops the daemon there, not at the first STARTTLS
  const tls: (ListenerTls | null)[] = [];

  // who counts the session out when it ends: the parent that admitted it, or our own admission
  const ends = new Map<Session, () => void>();
  const onClose = (s: Session) => {
    sessions.delete(s);
    ends.get(s)?.();
    ends.delete(s);
    ctx.bus.notify('stat.decrement', { key: 'smtp.session' });
    // control_digest_update() counts the decrements of smtp.session as disconnections: monitor's disc
    ctx.bus.notify('stat.increment', { key: 'smtp.session.closed' });
  };

  const serve = (socket: Socket, index: number, onEnd: () => void) => {
    const listener = ctx.config.listeners[index]!;
    // a client that reset before we got to it has no address any more: nothing to serve
    if (listener.kind !== 'socket' && !socket.remoteAddress) {
      socket.destroy();
      return onEnd();
    }
    // replies are small writes the client waits for: never hold them back for Nagle
    socket.setNoDelay(true);
    const hostname = listener.hostname ?? ctx.serverName;
    const session = new Session(newSessionId(), socket, {
      bus: ctx.bus, config: ctx.config, listener, listenerIndex: index, hostname, limits, clock: ctx.clock,
      timers, tls: tls[index] ?? null, onClose,
    });
    sessions.add(session);
    ends.set(session, onEnd);
    ctx.bus.notify('stat.increment', { key: 'smtp.session' });
    ctx.bus.notify('stat.increment', { key: 'smtp.session.total', labels: { listener: String(index) } });
    session.start();
  };

  /** The 421 of a refused connection; an SMTPS client only understands it after the handshake. */
  const refuse = (socket: Socket, index: number, reply: Reply) => {
    socket.on('error', () => {});
    const t = tls[index];
    if (ctx.config.listeners[index]!.tls !== 'smtps' || !t) return void socket.end(formatReply(reply));
    acceptTls(socket, t, REFUSAL_HANDSHAKE_MS).then((secure) => secure.end(formatReply(reply)), () => socket.destroy());
  };

  const accept = (index: number) => (socket: Socket) => {
    const address = ctx.config.listeners[index]!.kind === 'socket' ? 'local' : (socket.remoteAddress ?? '');
    const refused = admission.admit(address);
    if (!refused) return serve(socket, index, () => admission.release(address));
    refuse(socket, index, refused);
  };

  const acceptOn = (handle: unknown, index: number, admit: (address: string) => Admitted | Promise<Admitted>) => {
    const admitted = (socket: Socket, a: Admitted) => ('reply' in a ? refuse(socket, index, a.reply) : serve(socket, index, a.release));
    const server = createServer((socket) => {
      // a client may reset while the parent counts it in: that ends this connection, nothing else
      socket.on('error', () => undefined);
      const address = socket.remoteAddress;
      if (!address) return void socket.destroy();
      const a = admit(address);
      if (!(a instanceof Promise)) return admitted(socket, a);
      a.then((answer) => admitted(socket, answer), () => socket.destroy());
    });
    servers.push(server);
    return new Promise<void>((resolve) => {
      server.on('error', (err) => {
        log('warn', null, 'smtp', 'listen', { listener: index, error: err.message });
        resolve();
      });
      server.listen(handle as Parameters<Server['listen']>[0], resolve);
    });
  };

  return {
    name: 'smtp',
    peers: PEERS.smtp,
    handlers: {},
    adopt: serve,
    refuse,
    acceptOn,
    admission,
    async start() {
      const keys = ctx.keys ?? (ctx.config.listeners.some((l) => l.tls !== 'none') ? loadKeyring(ctx.config) : EMPTY_KEYRING);
      for (const listener of ctx.config.listeners) tls.push(listenerTls(ctx.config, listener, ctx.serverName, keys));
      if (opts.adoptOnly) return;
      for (const [index, listener] of ctx.config.listeners.entries()) {
        const opened = await openListener(listener, ctx.spool, accept(index));
        servers.push(...opened);
        for (const s of opened) {
          const a = s.address();
          log('info', null, 'smtp', 'listen', typeof a === 'string' || a === null ? { path: a } : { address: a.address, port: a.port });
        }
      }
    },
    async stop() {
      const closing = servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r())));
      for (const s of [...sessions]) s.close(REPLIES.shutdown, 'shutdown');
      await Promise.all(closing);
    },
  };
}
