/**
 * The control socket: a UNIX socket in the spool, mode 0600, so only root and the daemon's own
 * user can reach it (Node cannot read a peer's credentials; the file mode is the check, as it is
 * for smtpd's socket users other than root). Each line is a request; each gets one reply. In the
 * daemon the parent binds the socket (the spool is root's) and hands each connection over.
 */
import { chmodSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { log } from '../log.js';
import { CONTROL_VERSION, decodeRequest, encode, LineSplitter, type ControlReply } from './protocol.js';
import { resolveCommand, type CommandEnv, type ControlCommand } from './commands.js';

/** What the mailq socket answers: smtpctl's `show queue`, which mailq is. */
export const QUERY_COMMANDS = ['show queue'];

/**
 * The mailq socket's answer: the queue lines any user may see (as Postfix's showq shows them),
 * not the envelopes behind them (client addresses, authenticated users, local accounts).
 */
export function queueLinesOnly(data: unknown): unknown {
  const text = (data as { text?: unknown }).text;
  return typeof text === 'string' ? { lines: text.split('\n').filter(Boolean), text } : {};
}

export interface ControlServerOptions {
  /** Only these commands (their words joined); the others get smtpctl's "need root privileges". */
  only?: string[];
  mode?: number;
  /** What of an answer leaves this socket (the mailq socket: smtpctl's lines, not whole envelopes). */
  project?: (data: unknown) => unknown;
}

export class ControlServer {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly path: string,
    private readonly table: () => ControlCommand[],
    private readonly env: CommandEnv,
    private readonly options: ControlServerOptions = {},
  ) {}

  async listen(): Promise<void> {
    try {
      unlinkSync(this.path); // left by a daemon that died; the spool's pid lock says none runs
    } catch {
      // no stale socket
    }
    const server = createServer((s) => this.serve(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => resolve());
    });
    chmodSync(this.path, this.options.mode ?? 0o600);
    this.server = server;
  }

  /** Serve a connection someone else accepted (the parent, which binds the socket in its spool). */
  adopt(socket: Socket): void {
    this.serve(socket);
    socket.resume();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.setEncoding('utf8');
    const lines = new LineSplitter();
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: string) => {
      const got = lines.push(chunk);
      if (got === null) return void socket.destroy();
      for (const line of got) if (line.trim()) void this.answer(socket, line);
    });
  }

  private async answer(socket: Socket, line: string): Promise<void> {
    const req = decodeRequest(line);
    const reply = (r: ControlReply) => socket.writable && socket.write(encode(r));
    if ('error' in req) {
      return void reply({ v: CONTROL_VERSION, id: -1, ok: false, error: { code: 'TSMTPD_ERR_CONTROL', message: req.error } });
    }
    const found = resolveCommand(this.table(), req.words);
    if ('error' in found) {
      return void reply({ v: CONTROL_VERSION, id: req.id, ok: false, error: { code: 'TSMTPD_ERR_CONTROL', message: found.error } });
    }
    if (this.options.only && !this.options.only.includes(found.command.words.join(' '))) {
      return void reply({ v: CONTROL_VERSION, id: req.id, ok: false, error: { code: 'TSMTPD_ERR_PERMISSION', message: 'need root privileges' } });
    }
    try {
      const data = await found.command.handler(this.env, found.args);
      log('info', null, 'control', 'control', { command: found.command.words.join(' '), args: found.args.join(' ') || undefined });
      const project = this.options.project ?? ((d: unknown) => d);
      if (isStream(data)) {
        // a listing as long as the queue goes in parts, each written when the socket has room
        for await (const part of data) {
          if (!socket.writable) return;
          if (!reply({ v: CONTROL_VERSION, id: req.id, ok: true, data: project(part), more: true })) await drained(socket);
        }
        return void reply({ v: CONTROL_VERSION, id: req.id, ok: true, data: null });
      }
      reply({ v: CONTROL_VERSION, id: req.id, ok: true, data: project(data) });
    } catch (err) {
      reply({ v: CONTROL_VERSION, id: req.id, ok: false, error: { code: 'TSMTPD_ERR_CONTROL', message: (err as Error).message } });
    }
  }
}

function isStream(data: unknown): data is AsyncIterable<unknown> {
  return typeof data === 'object' && data !== null && Symbol.asyncIterator in data;
}

/** Room to write again, or the client gone (a closed socket never drains: the listing then stops). */
function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}
