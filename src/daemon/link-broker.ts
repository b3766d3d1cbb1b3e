/**
 * Socket pairs for the links between child processes, made by the parent as OpenSMTPD makes
 * socketpairs before it forks: Node has no socketpair(2), so the parent listens on a UNIX
 * socket in a directory only it can enter, connects to itself, and hands one end to each child.
 * Neither end is read here: both are paused until their new owners take them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export class LinkBroker {
  private readonly accepted: ((s: Socket) => void)[] = [];
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(private readonly server: Server, private readonly dir: string, private readonly path: string) {
    server.on('connection', (s) => {
      const take = this.accepted.shift();
      if (take) take(s);
      else s.destroy();
    });
  }

  static async open(): Promise<LinkBroker> {
    const dir = mkdtempSync(join(tmpdir(), 'tsmtpd-links-'));
    const path = join(dir, 'broker.sock');
    const server = createServer({ pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    server.unref();
    return new LinkBroker(server, dir, path);
  }

  /** Two connected sockets; one pair at a time, so each accepted end matches its connecting end. */
  pair(): Promise<[Socket, Socket]> {
    const next = this.chain.then(async () => {
      const theirs = new Promise<Socket>((resolve) => this.accepted.push(resolve));
      const ours = connect(this.path);
      ours.pause();
      await new Promise<void>((resolve, reject) => {
        ours.once('connect', () => resolve());
        ours.once('error', reject);
      });
      return [ours, await theirs] as [Socket, Socket];
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  close(): void {
    this.server.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
