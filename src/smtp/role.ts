/**
 * The smtp role: listeners and sessions. It takes untrusted input, so it holds no table, no
 * queue file and no secret: every decision is a message to the lka or the queue.
 */
import { randomBytes } from 'node:crypto';
import type { Server, Socket } from 'node:net';
import type { Role } from '../bus/bus.js';
import type { RoleContext } from '../daemon/context.js';
import { log } from '../log.js';
import { systemClock, type Clock } from '../clock.js';
import { AuthFailures } from './auth-failures.js';
import { SESSION_LIMITS, type SessionLimits } from './limits.js';
import { openListener } from './listener.js';
import { formatReply, REPLIES } from './reply.js';
import { Session } from './session.js';
import { listenerTls, type ListenerTls } from './tls.js';

export function isLoopback(address: string): boolean {
  return address === 'local' || address === '::1' || /^(?:::ffff:)?127\./.test(address);
}

export function newSessionId(): string {
  return randomBytes(8).toString('hex');
}

/** Tests hand in their own limits and a fake clock for the network timers. */
export function createSmtpRole(ctx: RoleContext, given?: SessionLimits, timers: Clock = systemClock): Role<'smtp'> {
  // otherwise smtpd.conf's `smtp timeout` and `smtp limit` apply
  const s = ctx.config.smtp;
  const limits: SessionLimits = given ?? {
    ...SESSION_LIMITS,
    idleTimeoutMs: s.timeout * 1000,
    commandTimeMs: s.maxCommandTime * 1000,
    minDataRate: s.minDataRate,
    maxSessions: s.maxSessions,
    maxSessionsPerAddress: s.maxSessionsPerAddress,
  };
  const ban = s.authBan;
  const authFailures = new AuthFailures(ban ? { failures: ban.failures, windowMs: ban.window * 1000, banMs: ban.duration * 1000 } : null, timers);
  const servers: Server[] = [];
  const sessions = new Set<Session>();
  const perAddress = new Map<string, number>();
  // `tsmtpctl pause smtp`: new sessions are turned away with 421 until resumed; open ones finish
  let paused = false;
  // built at start: a pki that cannot be read stops the daemon there, not at the first STARTTLS
  const tls: (ListenerTls | null)[] = [];

  const onClose = (s: Session) => {
    sessions.delete(s);
    const n = (perAddress.get(s.facts.clientAddress) ?? 1) - 1;
    if (n > 0) perAddress.set(s.facts.clientAddress, n);
    else perAddress.delete(s.facts.clientAddress);
    ctx.bus.notify('stat.decrement', { key: 'smtp.session' }, () => {});
  };

  const accept = (index: number) => (socket: Socket) => {
    const listener = ctx.config.listeners[index]!;
    // a client that reset before we got to it has no address any more: nothing to serve
    if (listener.kind !== 'socket' && !socket.remoteAddress) return void socket.destroy();
    const address = listener.kind === 'socket' ? 'local' : socket.remoteAddress!;
    const count = perAddress.get(address) ?? 0;
    if (paused) {
      socket.on('error', () => {});
      return void socket.end(formatReply(REPLIES.paused));
    }
    if (authFailures.banned(address.replace(/^::ffff:/, ''))) {
      log('info', null, 'smtp', 'limit', { address, reason: 'banned' });
      socket.on('error', () => {});
      return void socket.end(formatReply(REPLIES.banned));
    }
    // loopback clients are exempt from the per-address cap, as Postfix exempts $mynetworks:
    // local submission and benchmarks come from there
    if (sessions.size >= limits.maxSessions || (count >= limits.maxSessionsPerAddress && !(limits.exemptLoopback && isLoopback(address)))) {
      log('warn', null, 'smtp', 'limit', { address, sessions: sessions.size });
      socket.on('error', () => {});
      return void socket.end(formatReply(REPLIES.tooManySessions));
    }
    perAddress.set(address, count + 1);
    // replies are small writes the client waits for: never hold them back for Nagle
    socket.setNoDelay(true);
    const hostname = listener.hostname ?? ctx.serverName;
    const session = new Session(newSessionId(), socket, {
      bus: ctx.bus, config: ctx.config, listener, listenerIndex: index, hostname, limits, clock: ctx.clock,
      timers, authFailures, tls: tls[index] ?? null, onClose,
    });
    sessions.add(session);
    ctx.bus.notify('stat.increment', { key: 'smtp.session' }, () => {});
    ctx.bus.notify('stat.increment', { key: 'smtp.session.total', labels: { listener: String(index) } }, () => {});
    session.start();
  };

  return {
    name: 'smtp',
    peers: ['lka', 'queue', 'stat'],
    handlers: {
      'control.smtp.pause': (req) => {
        if (!('paused' in req)) return { paused, changed: false };
        const changed = paused !== req.paused;
        paused = req.paused;
        if (changed) log('info', null, 'smtp', 'control', { smtp: paused ? 'paused' : 'resumed' });
        return { paused, changed };
      },
    },
    async start() {
      for (const listener of ctx.config.listeners) tls.push(listenerTls(ctx.config, listener, ctx.serverName));
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
