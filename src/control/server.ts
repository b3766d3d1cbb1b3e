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

export class ControlServer {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly path: string,
    private readonly table: () => ControlCommand[],
    private readonly env: CommandEnv,
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
    chmodSync(this.path, 0o600);
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
    try {
      const data = await found.command.handler(this.env, found.args);
      log('info', null, 'control', 'control', { command: found.command.words.join(' '), args: found.args.join(' ') || undefined });
      reply({ v: CONTROL_VERSION, id: req.id, ok: true, data });
    } catch (err) {
      reply({ v: CONTROL_VERSION, id: req.id, ok: false, error: { code: 'TSMTPD_ERR_CONTROL', message: (err as Error).message } });
    }
  }
}
