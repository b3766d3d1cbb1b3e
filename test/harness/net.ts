/**
 * Loopback helpers for tests: a free TCP port, and a small line-oriented SMTP client that
 * reads whole (multi-line) replies, for scenario-style session tests.
 */
import { createServer, connect, type Socket } from 'node:net';

/** A port that was free a moment ago on `host` (the kernel picks it; a race is possible but rare). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface SmtpReply {
  code: number;
  lines: string[];
  text: string;
}

/** A minimal SMTP client: `await c.reply()`, `await c.cmd('EHLO x')`, `c.write(raw)`. */
export class SmtpTestClient {
  private buffer = '';
  private waiting: (() => void) | null = null;
  private closed = false;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buffer += d;
      this.waiting?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
    socket.on('error', () => {});
  }

  static connect(port: number, host = '127.0.0.1', localAddress?: string): Promise<SmtpTestClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host, localAddress }, () => resolve(new SmtpTestClient(s)));
      s.once('error', reject);
    });
  }

  /** A client over a socket the test opened itself (TLS for SMTPS, say). */
  static over(socket: Socket): SmtpTestClient {
    return new SmtpTestClient(socket);
  }

  /** A UNIX socket listener (the spool's enqueue.sock). */
  static connectPath(path: string): Promise<SmtpTestClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ path }, () => resolve(new SmtpTestClient(s)));
      s.once('error', reject);
    });
  }

  /** Read one complete reply (all its continuation lines). Rejects on close or timeout. */
  async reply(timeoutMs = 5000): Promise<SmtpReply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const parsed = this.takeReply();
      if (parsed) return parsed;
      if (this.closed) throw new Error(`connection closed; pending: ${JSON.stringify(this.buffer)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for reply; pending: ${JSON.stringify(this.buffer)}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        this.waiting = () => { clearTimeout(t); this.waiting = null; res(); };
      });
    }
  }

  write(raw: string | Buffer): void {
    this.socket.write(raw);
  }

  async cmd(line: string, timeoutMs?: number): Promise<SmtpReply> {
    this.write(line + '\r\n');
    return this.reply(timeoutMs);
  }

  /** Wait until the server closes the connection. */
  async closedByPeer(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('peer did not close');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private takeReply(): SmtpReply | null {
    const lines: string[] = [];
    let offset = 0;
    for (;;) {
      const eol = this.buffer.indexOf('\r\n', offset);
      if (eol < 0) return null;
      const line = this.buffer.slice(offset, eol);
      lines.push(line);
      offset = eol + 2;
      if (line.length < 4 || line[3] !== '-') break;
    }
    this.buffer = this.buffer.slice(offset);
    const code = Number.parseInt(lines[0]!.slice(0, 3), 10);
    return { code, lines, text: lines.map((l) => l.slice(4)).join('\n') };
  }
}
