/** The client side of the control protocol, used by tsmtpctl and by tests. */
import { connect, type Socket } from 'node:net';
import { CONTROL_VERSION, decodeReply, encode, LineSplitter, type ControlReply } from './protocol.js';

export class DaemonNotRunningError extends Error {
  override name = 'DaemonNotRunningError';
  readonly code = 'TSMTPD_ERR_NOT_RUNNING';
}

/** The control socket is root's and the daemon user's (tsmtpctl then asks the mailq socket). */
export class ControlPermissionError extends Error {
  override name = 'ControlPermissionError';
}

export class ControlClient {
  private nextId = 1;
  private readonly pending = new Map<number, (r: ControlReply) => void>();
  private readonly lines = new LineSplitter(16 * 1024 * 1024);

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      for (const line of this.lines.push(chunk) ?? []) {
        if (!line) continue;
        const reply = decodeReply(line);
        this.pending.get(reply.id)?.(reply);
        if (!(reply.ok && reply.more)) this.pending.delete(reply.id);
      }
    });
    socket.on('close', () => {
      for (const resolve of this.pending.values()) {
        resolve({ v: CONTROL_VERSION, id: -1, ok: false, error: { code: 'TSMTPD_ERR_CONTROL', message: 'daemon closed the connection' } });
      }
      this.pending.clear();
    });
  }

  static open(path: string): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path, () => resolve(new ControlClient(s)));
      s.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
          reject(new DaemonNotRunningError(`tsmtpd doesn't seem to be running (no control socket at ${path})`));
        } else if (err.code === 'EACCES') {
          reject(new ControlPermissionError(`permission denied on ${path}: control commands need root or the daemon's user`));
        } else reject(err);
      });
    });
  }

  /**
   * Send the command's words; resolves with its data, rejects with the daemon's error text. A
   * streamed reply (`show queue`) comes in parts, each handed to `onPart` as it arrives; without
   * `onPart` the parts are gathered and the promise resolves with them all.
   */
  request(words: string[], onPart?: (part: unknown) => void): Promise<unknown> {
    const id = this.nextId++;
    const parts: unknown[] = [];
    return new Promise((resolve, reject) => {
      this.pending.set(id, (r) => {
        if (!r.ok) return reject(new Error(r.error.message));
        if (!r.more) return resolve(parts.length && r.data === null ? parts : r.data);
        if (onPart) onPart(r.data);
        else parts.push(r.data);
      });
      this.socket.write(encode({ v: CONTROL_VERSION, id, words }));
    });
  }

  close(): void {
    this.socket.end();
  }
}
