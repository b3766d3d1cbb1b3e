/**
 * Local submission for `sendmail`: one SMTP transaction over the daemon's enqueue socket
 * (`SPOOL/enqueue.sock`), so local mail goes through exactly the rules and filters that network
 * mail does. The message is read line by line and dot-stuffed on the way; a failure anywhere is
 * reported with the daemon's own reply.
 */
import { connect, type Socket } from 'node:net';

export class SubmitError extends Error {}

/** Nobody listens on the socket: the daemon is not running (sendmail then queues offline). */
export class DaemonDownError extends SubmitError {}

export interface Submission {
  socket: Socket;
  sender: string;
  recipients: string[];
  /** The message lines (no line endings), as they come; `stop` ends them early (sendmail without -i). */
  lines: AsyncIterable<string>;
  timeoutMs?: number;
}

export async function submit(s: Submission): Promise<string> {
  const socket = s.socket;
  const replies = new ReplyReader(socket, s.timeoutMs ?? 60_000);
  try {
    await replies.expect(2, 'banner');
    await command(socket, replies, 'EHLO localhost', 2);
    // a UTF-8 address needs SMTPUTF8, or the daemon refuses it (553 5.6.7, RFC 6531 §3.5)
    const utf8 = [s.sender, ...s.recipients].some((a) => /[^\x00-\x7f]/.test(a));
    await command(socket, replies, `MAIL FROM:<${s.sender}>${utf8 ? ' SMTPUTF8' : ''}`, 2);
    for (const rcpt of s.recipients) await command(socket, replies, `RCPT TO:<${rcpt}>`, 2);
    await command(socket, replies, 'DATA', 3);
    for await (const line of s.lines) {
      // a line starting with a dot gets another one, so the message cannot end before its end
      const ok = socket.write(`${line.startsWith('.') ? '.' : ''}${line}\r\n`);
      if (!ok) await new Promise((r) => socket.once('drain', r));
    }
    const final = await command(socket, replies, '.', 2);
    socket.write('QUIT\r\n');
    return final;
  } finally {
    socket.end();
  }
}

/** The enqueue socket, connected; a missing socket or one nobody accepts on is DaemonDownError. */
export function connectDaemon(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path, () => resolve(socket));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      const down = err.code === 'ENOENT' || err.code === 'ECONNREFUSED';
      reject(new (down ? DaemonDownError : SubmitError)(`cannot reach the daemon at ${path}: ${err.message}`));
    });
  });
}

async function command(socket: Socket, replies: ReplyReader, line: string, expected: number): Promise<string> {
  socket.write(`${line}\r\n`);
  return replies.expect(expected, line.split(' ')[0]!);
}

/** Reads whole (multi-line) replies off the socket. */
class ReplyReader {
  private buffer = '';
  private waiter: (() => void) | null = null;
  private closed = false;

  constructor(socket: Socket, private readonly timeoutMs: number) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => { this.buffer += d; this.waiter?.(); });
    socket.on('close', () => { this.closed = true; this.waiter?.(); });
    socket.on('error', () => undefined);
  }

  async expect(cls: number, what: string): Promise<string> {
    const reply = await this.next();
    if (Math.floor(Number(reply.slice(0, 3)) / 100) !== cls) throw new SubmitError(`${what}: ${reply.replace(/\r\n/g, ' ').trim()}`);
    return reply.split('\r\n').filter(Boolean).pop()!;
  }

  private async next(): Promise<string> {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const m = /^(?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n/.exec(this.buffer);
      if (m) {
        this.buffer = this.buffer.slice(m[0].length);
        return m[0];
      }
      if (this.closed) throw new SubmitError('the daemon closed the connection');
      const left = deadline - Date.now();
      if (left <= 0) throw new SubmitError('timeout waiting for the daemon');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => { clearTimeout(t); this.waiter = null; resolve(); };
      });
    }
  }
}
