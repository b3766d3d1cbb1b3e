/**
 * A link carries bus messages to one other process: over a socket the parent handed us (framed
 * with frame.ts, the writes of one turn of the event loop coalesced into one system call), or
 * over the IPC channel to the parent itself. It reports back-pressure, so a sender can wait
 * instead of buffering without bound, and closes itself on any framing error.
 */
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { encodeFrame, FrameDecoder } from './frame.js';

export interface Link {
  /** The process at the other end: `lka`, `queue`, `smtp.2`, `parent`... */
  readonly remote: string;
  send(message: unknown): void;
  /** True while the transport's send buffer is over its mark. */
  congested(): boolean;
  /** Resolves once the send buffer has drained (or the link closed). */
  drained(): Promise<void>;
  onMessage(fn: (message: unknown) => void): void;
  onClose(fn: (reason: string) => void): void;
  close(): void;
  readonly closed: boolean;
}

/** Common event plumbing of both transports. */
abstract class BaseLink extends EventEmitter implements Link {
  closed = false;
  constructor(readonly remote: string) {
    super();
  }
  abstract send(message: unknown): void;
  abstract congested(): boolean;
  abstract close(): void;

  drained(): Promise<void> {
    if (!this.congested() || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.off('drain', done);
        this.off('close', done);
        resolve();
      };
      this.on('drain', done);
      this.on('close', done);
    });
  }

  onMessage(fn: (message: unknown) => void): void {
    this.on('message', fn);
  }

  onClose(fn: (reason: string) => void): void {
    this.on('close', fn);
  }

  protected shut(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close', reason);
  }
}

export class SocketLink extends BaseLink {
  private readonly decoder = new FrameDecoder();
  private corked = false;

  constructor(remote: string, private readonly socket: Socket) {
    super(remote);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      let messages: unknown[];
      try {
        messages = this.decoder.push(chunk);
      } catch (err) {
        socket.destroy();
        return this.shut((err as Error).message);
      }
      for (const m of messages) this.emit('message', m);
    });
    socket.on('drain', () => this.emit('drain'));
    socket.on('error', (err) => this.shut(err.message));
    socket.on('close', () => this.shut('closed'));
  }

  send(message: unknown): void {
    if (this.closed) return;
    // everything sent in this turn of the loop leaves in one writev
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(encodeFrame(message));
  }

  congested(): boolean {
    return this.socket.writableNeedDrain;
  }

  close(): void {
    this.socket.destroy();
    this.shut('closed');
  }
}

/** The IPC channel between the parent and a child; bus traffic is wrapped as `{ bus: message }`. */
type Channel = Pick<ChildProcess, 'send' | 'on' | 'off' | 'connected'> | NodeJS.Process;

export class IpcLink extends BaseLink {
  private backlog = false;
  private readonly onIpc = (m: unknown) => {
    if (m !== null && typeof m === 'object' && 'bus' in m) this.emit('message', (m as { bus: unknown }).bus);
  };

  constructor(remote: string, private readonly channel: Channel) {
    super(remote);
    channel.on('message', this.onIpc);
    channel.on('disconnect', () => this.shut('disconnected'));
  }

  send(message: unknown): void {
    if (this.closed || !this.channel.connected) return;
    const ok = this.channel.send!({ bus: message }, undefined, {}, (err) => {
      if (err) return this.shut(err.message);
      if (this.backlog) {
        this.backlog = false;
        this.emit('drain');
      }
    });
    if (!ok) this.backlog = true;
  }

  congested(): boolean {
    return this.backlog;
  }

  close(): void {
    this.channel.off('message', this.onIpc);
    this.shut('closed');
  }
}
