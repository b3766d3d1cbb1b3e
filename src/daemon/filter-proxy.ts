/**
 * The lka's side of filter processes the parent starts (filter-host.ts): a stand-in with the
 * shape of a child process whose stdin and stdout are the lka's end of the socket pair the
 * filter reads and writes, handed over by the parent; `exit` comes from the parent, which
 * watches the process.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import type { ProcessSpec } from '../config/types.js';
import type { FilterProcess, FilterSpawner } from '../filter/spawn.js';
import type { FilterReply, FilterRequest } from './filter-host.js';

class RemoteFilter extends EventEmitter implements FilterProcess {
  // the socket arrives a moment later: until then, writes wait in these
  readonly stdin: Writable = new PassThrough();
  readonly stdout: Readable = new PassThrough();
  readonly stderr = null;
  pid: number | undefined;
  private socket: Socket | null = null;

  constructor(private readonly id: number, private readonly ask: (m: FilterRequest) => void) {
    super();
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    this.ask({ t: 'filter-kill', id: this.id, signal });
    return true;
  }

  attach(socket: Socket): void {
    this.socket = socket;
    socket.on('error', () => undefined);
    (this.stdin as PassThrough).pipe(socket);
    socket.pipe(this.stdout as PassThrough);
  }

  exited(code: number | null, signal: NodeJS.Signals | null): void {
    this.socket?.destroy();
    this.emit('exit', code, signal);
  }
}

export class FilterProxy {
  private readonly filters = new Map<number, RemoteFilter>();
  private nextId = 1;

  constructor(private readonly ask: (m: FilterRequest) => void) {}

  readonly spawner: FilterSpawner = (name: string, spec: ProcessSpec) => {
    const id = this.nextId++;
    const f = new RemoteFilter(id, this.ask);
    this.filters.set(id, f);
    this.ask({ t: 'filter-spawn', id, name, spec });
    return f;
  };

  /** A reply from the parent, with the socket it carried (for `filter-io`). */
  receive(m: FilterReply, handle: unknown): void {
    const f = this.filters.get(m.id);
    if (!f) return;
    switch (m.t) {
      case 'filter-io':
        f.pid = m.pid;
        return f.attach(handle as Socket);
      case 'filter-error':
        return void f.emit('error', new Error(m.error));
      case 'filter-exit':
        this.filters.delete(m.id);
        return f.exited(m.code, m.signal);
    }
  }
}
