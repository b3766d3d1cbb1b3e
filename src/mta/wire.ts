/**
 * A client connection's transport: connect (plain or TLS), write with back-pressure, read whole
 * replies through the strict parser under a per-step timeout, and upgrade to TLS in place.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import type { Clock } from '../clock.js';
import { ReplyParser, type Reply } from './reply-parser.js';
import { MtaSessionError } from './session-error.js';
import { trace } from '../trace.js';

export interface WireTarget {
  address: string;
  port: number;
  localAddress?: string;
  /** TLS from the first byte (smtps). */
  tls?: ConnectionOptions;
}

export class Wire {
  private parser = new ReplyParser();
  private replies: Reply[] = [];
  private failure: MtaSessionError | null = null;
  private wake: (() => void) | null = null;
  private ended = false;

  private constructor(private socket: Socket | TLSSocket, private readonly clock: Clock) {
    this.listen(socket);
  }

  /** Connect within `timeoutMs`; a refusal or timeout is a `connect` error the route remembers. */
  static connect(t: WireTarget, clock: Clock, timeoutMs: number): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const opts = { host: t.address, port: t.port, ...(t.localAddress ? { localAddress: t.localAddress } : {}) };
      const s = t.tls ? tlsConnect({ ...t.tls, ...opts }) : netConnect(opts);
      // commands are small writes answered one by one: Nagle plus delayed ACKs would add ~40 ms to each
      s.setNoDelay(true);
      const timer = clock.setTimer(timeoutMs, () => fail(new MtaSessionError('connect', 'connection timed out')));
      const fail = (e: MtaSessionError) => { timer.cancel(); s.destroy(); reject(e); };
      s.once('error', (err) => fail(new MtaSessionError(t.tls ? 'tls' : 'connect', err.message)));
      s.once(t.tls ? 'secureConnect' : 'connect', () => {
        timer.cancel();
        s.removeAllListeners('error');
        resolve(new Wire(s, clock));
      });
    });
  }

  get localAddress(): string {
    return (this.socket.localAddress ?? '').replace(/^::ffff:/, '');
  }

  get closed(): boolean {
    return this.ended;
  }

  get secure(): boolean {
    return 'encrypted' in this.socket && this.socket.encrypted === true;
  }

  get tlsSocket(): TLSSocket | null {
    return this.secure ? (this.socket as TLSSocket) : null;
  }

  private listen(s: Socket): void {
    s.on('data', (d: Buffer) => this.onData(d));
    s.on('error', (e) => this.setFailure(new MtaSessionError('io', e.message)));
    s.on('close', () => {
      this.ended = true;
      this.setFailure(new MtaSessionError('io', 'connection closed by remote host'));
    });
  }

  private onData(d: Buffer): void {
    trace('io', null, 'mta', { event: 'read', octets: d.length });
    for (const ev of this.parser.feed(d)) {
      // mta_session.c: "mta: %p: <<< %s"
      if (ev.kind === 'reply') trace('mta', null, 'mta', { dir: '<<<', code: ev.reply.code, line: ev.reply.lines[0] ?? '' });
      if (ev.kind === 'reply') this.replies.push(ev.reply);
      else this.setFailure(new MtaSessionError('io', `protocol error: ${ev.reason}`));
    }
    // a server that floods replies we never asked for is not talking SMTP
    if (this.replies.length > 1000) this.setFailure(new MtaSessionError('io', 'remote host sent too much data'));
    this.wake?.();
  }

  private setFailure(e: MtaSessionError): void {
    if (!this.failure) this.failure = e;
    if (e.detail.startsWith('protocol') || e.detail.startsWith('remote host sent')) this.socket.destroy();
    this.wake?.();
  }

  /** The next reply, or the connection's failure, or a timeout. */
  async read(timeoutMs: number): Promise<Reply> {
    let timedOut = false;
    const timer = this.clock.setTimer(timeoutMs, () => { timedOut = true; this.wake?.(); });
    try {
      for (;;) {
        const r = this.replies.shift();
        if (r) return r;
        if (this.failure) throw this.failure;
        if (timedOut) throw new MtaSessionError('io', 'timeout waiting for the remote host');
        await new Promise<void>((res) => (this.wake = res));
        this.wake = null;
      }
    } finally {
      timer.cancel();
    }
  }

  /** Replies already queued that nobody asked for (a non-pipelining peer must never have any). */
  get unsolicited(): number {
    return this.replies.length + (this.parser.partial ? 1 : 0);
  }

  /** Write, waiting for the socket to drain; a peer that stops reading is dropped after `timeoutMs`. */
  async write(data: string | Buffer, timeoutMs = 300_000): Promise<void> {
    if (this.failure) throw this.failure;
    // commands, not message bodies: "mta: %p: >>> %s"
    if (typeof data === 'string') trace('mta', null, 'mta', { dir: '>>>', line: data.split('\r\n')[0]!.replace(/^(AUTH \S+) .*/i, '$1 ...') });
    if (this.socket.write(data)) return;
    const sock = this.socket;
    await new Promise<void>((res) => {
      const timer = this.clock.setTimer(timeoutMs, () => {
        this.setFailure(new MtaSessionError('io', 'timeout writing to the remote host'));
        sock.destroy();
        done();
      });
      const done = () => { timer.cancel(); sock.off('drain', done); sock.off('close', done); res(); };
      sock.on('drain', done);
      sock.on('close', done);
    });
    if (this.failure) throw this.failure;
  }

  /** Upgrade after `220` to STARTTLS; anything the server sent beyond that reply is an injection. */
  async startTls(opts: ConnectionOptions, timeoutMs: number): Promise<void> {
    if (this.unsolicited) throw new MtaSessionError('io', 'remote host sent data before the TLS handshake');
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    plain.on('error', () => {});
    const secured = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ ...opts, socket: plain });
      const timer = this.clock.setTimer(timeoutMs, () => { s.destroy(); reject(new MtaSessionError('tls', 'TLS handshake timed out', { downgrade: true })); });
      s.once('error', (e) => { timer.cancel(); s.destroy(); reject(new MtaSessionError('tls', e.message, { downgrade: true })); });
      s.once('secureConnect', () => { timer.cancel(); s.removeAllListeners('error'); resolve(s); });
    });
    this.socket = secured;
    this.parser = new ReplyParser();
    this.listen(secured);
  }

  /** Close politely; the socket is destroyed if the remote does not close within a moment. */
  end(): void {
    if (this.ended) return;
    this.socket.end();
    const t = this.clock.setTimer(2000, () => this.socket.destroy());
    this.socket.once('close', () => t.cancel());
  }

  destroy(): void {
    this.socket.destroy();
  }
}
