/**
 * A scriptable SMTP sink for the mta tests, on 127.0.0.2-9: chosen EHLO capabilities, STARTTLS or
 * smtps with a self-signed certificate, per-recipient rejections and raw hostile replies; it
 * records every connection's commands and every transaction it accepted.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { requirePeer } from '../harness/peers.js';

export interface TestCert {
  key: string;
  cert: string;
}

/** A self-signed certificate for the given names, made by `openssl req -x509` in a temp dir. */
export function makeCert(names: string[]): TestCert {
  requirePeer('openssl');
  const dir = mkdtempSync(join(tmpdir(), 'tsmtpd-mta-cert-'));
  try {
    const san = names.map((n) => (/^[\d.]+$/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', `/CN=${names[0]}`,
      '-addext', `subjectAltName=${san}`], { stdio: 'ignore' });
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface SinkOptions {
  host: string;
  port?: number;
  /** EHLO keywords after the greeting line. */
  caps?: string[];
  cert?: TestCert;
  smtps?: boolean;
  /** Raw banner bytes (CRLF included); default a plain 220. */
  banner?: string;
  /** Reject EHLO with 502 so the client must fall back to HELO. */
  noEhlo?: boolean;
  /** Recipients accepted per transaction; past it RCPT gets 452 4.5.3 (RFC 5321 4.5.3.1.10). */
  maxRcpts?: number;
  /** A raw reply for RCPT TO:<addr>, or undefined to accept. */
  rcpt?: (addr: string) => string | undefined;
  /** A raw reply after the final dot, or undefined for 250. */
  dataEnd?: () => string | undefined;
  /** Raw reply to EHLO, replacing the normal one (for hostile multi-line tests). */
  ehloRaw?: string;
  auth?: { user: string; password: string };
  /** Speak LMTP: LHLO, and one reply per accepted recipient after the final dot. */
  lmtp?: boolean;
  /** Never answer this verb (a stalled server). */
  silentOn?: string;
  /** Drop the connection when this verb arrives. */
  dropOn?: string;
  /** Close the connection silently after each accepted message (a server's idle timeout). */
  closeAfterTx?: boolean;
  /** Answer STARTTLS with 220, then drop the connection (a broken handshake). */
  brokenTls?: boolean;
  /** Raw replies by verb (`DATA: '250 ok'`), answered instead of acting on the command. */
  replies?: Record<string, string>;
}

export interface SinkTransaction {
  connection: number;
  tls: boolean;
  authUser?: string;
  mail: string;
  rcpts: string[];
  body: string;
}

export class Sink {
  readonly transactions: SinkTransaction[] = [];
  /** Every command line, per connection. */
  readonly commands: string[][] = [];
  /** What each read from the socket brought, per connection: which commands a client sent in one write. */
  readonly reads: string[][] = [];
  /** smtps handshakes: the client certificate's CN (when one was presented), protocol and cipher. */
  readonly handshakes: { peer: string | undefined; protocol: string; cipher: string }[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;

  private constructor(readonly opts: SinkOptions) {
    this.server = createServer((s) => this.accept(s));
  }

  static async start(opts: SinkOptions): Promise<Sink> {
    const sink = new Sink(opts);
    await new Promise<void>((res, rej) => {
      sink.server.once('error', rej);
      sink.server.listen(opts.port ?? 0, opts.host, () => res());
    });
    sink.port = (sink.server.address() as { port: number }).port;
    return sink;
  }

  get connections(): number {
    return this.commands.length;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((res) => this.server.close(() => res()));
  }

  private accept(raw: Socket): void {
    this.sockets.add(raw);
    raw.on('close', () => this.sockets.delete(raw));
    raw.on('error', () => {});
    const conn = this.commands.push([]) - 1;
    this.reads.push([]);
    const sock = this.opts.smtps && this.opts.cert ? new TLSSocket(raw, { isServer: true, ...this.opts.cert }) : raw;
    if (sock instanceof TLSSocket) {
      sock.on('secure', () => this.handshakes.push({
        peer: (sock.getPeerCertificate() as { subject?: { CN?: string } } | null)?.subject?.CN,
        protocol: sock.getProtocol() ?? '', cipher: sock.getCipher()?.name ?? '',
      }));
    }
    new SinkConnection(this, conn, sock, sock !== raw).start();
  }
}

class SinkConnection {
  private buf = '';
  private tx: SinkTransaction | null = null;
  private inData = false;
  private authUser: string | undefined;
  private pendingAuth: string[] | null = null;

  constructor(private readonly sink: Sink, private readonly conn: number, private sock: Socket, private tls: boolean) {}

  start(): void {
    this.listen();
    this.sock.write(this.sink.opts.banner ?? '220 sink.test ESMTP\r\n');
  }

  private listen(): void {
    this.sock.on('data', (d: Buffer) => {
      const text = d.toString('latin1');
      this.sink.reads[this.conn]!.push(text);
      this.buf += text;
      this.drain();
    });
    this.sock.on('error', () => {});
  }

  private drain(): void {
    for (let nl = this.buf.indexOf('\r\n'); nl >= 0; nl = this.buf.indexOf('\r\n')) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 2);
      if (this.inData) this.dataLine(line);
      else if (this.command(line) === 'starttls') return;
    }
  }

  private reply(s: string): void {
    this.sock.write(s.endsWith('\r\n') ? s : s + '\r\n');
  }

  private dataLine(line: string): void {
    if (line === '.') {
      this.inData = false;
      this.sink.transactions.push(this.tx!);
      this.tx = null;
      const n = this.sink.opts.lmtp ? this.sink.transactions.at(-1)!.rcpts.length : 1;
      for (let i = 0; i < n; i++) this.reply(this.sink.opts.dataEnd?.() ?? '250 2.0.0 queued');
      if (this.sink.opts.closeAfterTx) this.sock.end();
      return;
    }
    this.tx!.body += (line.startsWith('.') ? line.slice(1) : line) + '\r\n';
  }

  private command(line: string): string | void {
    this.sink.commands[this.conn]!.push(line);
    if (this.pendingAuth) return this.authStep(line);
    const verb = line.split(' ')[0]!.toUpperCase();
    const o = this.sink.opts;
    if (o.silentOn === verb) return;
    if (o.dropOn === verb) { this.sock.destroy(); return; }
    const raw = o.replies?.[verb];
    if (raw !== undefined) return this.reply(raw);
    switch (verb) {
      case 'LHLO':
      case 'EHLO':
        if (o.ehloRaw) return this.reply(o.ehloRaw);
        if (o.noEhlo) return this.reply('502 5.5.1 no EHLO here');
        return this.reply(['sink.test', ...(o.caps ?? [])].map((c, i, a) => `250${i === a.length - 1 ? ' ' : '-'}${c}`).join('\r\n'));
      case 'HELO': return this.reply('250 sink.test');
      case 'STARTTLS': return this.startTls();
      case 'AUTH': return this.auth(line);
      case 'MAIL':
        this.tx = { connection: this.conn, tls: this.tls, mail: line, rcpts: [], body: '', ...(this.authUser ? { authUser: this.authUser } : {}) };
        return this.reply('250 2.1.0 ok');
      case 'RCPT': return this.rcpt(line);
      case 'DATA':
        if (!this.tx?.rcpts.length) return this.reply('503 5.5.1 no recipients');
        this.inData = true;
        return this.reply('354 go ahead');
      case 'RSET': this.tx = null; return this.reply('250 2.0.0 reset');
      case 'QUIT': this.reply('221 2.0.0 bye'); this.sock.end(); return;
      default: return this.reply('500 5.5.2 what?');
    }
  }

  private rcpt(line: string): void {
    const addr = /^RCPT TO:<([^>]*)>/i.exec(line)?.[1] ?? '';
    if (!this.tx) return this.reply('503 5.5.1 MAIL first');
    const custom = this.sink.opts.rcpt?.(addr);
    if (custom) return this.reply(custom);
    if (this.tx.rcpts.length >= (this.sink.opts.maxRcpts ?? Infinity)) return this.reply('452 4.5.3 Too many recipients');
    this.tx.rcpts.push(line);
    this.reply('250 2.1.5 ok');
  }

  private startTls(): string {
    const cert = this.sink.opts.cert;
    if (!cert) { this.reply('454 4.7.0 no TLS'); return 'continue'; }
    this.reply('220 2.0.0 ready');
    if (this.sink.opts.brokenTls) { this.sock.destroy(); return 'starttls'; }
    this.sock.removeAllListeners('data');
    const secured = new TLSSocket(this.sock, { isServer: true, ...cert });
    this.sock = secured;
    this.tls = true;
    this.buf = '';
    this.listen();
    return 'starttls';
  }

  private auth(line: string): void {
    const [, mech = '', initial] = line.split(' ');
    if (mech.toUpperCase() === 'PLAIN' && initial) return this.checkAuth(Buffer.from(initial, 'base64').toString().split('\0').slice(1));
    if (mech.toUpperCase() !== 'LOGIN') return this.reply('504 5.5.4 mechanism not supported');
    this.pendingAuth = [];
    this.reply('334 VXNlcm5hbWU6');
  }

  private authStep(line: string): void {
    this.pendingAuth!.push(Buffer.from(line, 'base64').toString());
    if (this.pendingAuth!.length === 1) return this.reply('334 UGFzc3dvcmQ6');
    const got = this.pendingAuth!;
    this.pendingAuth = null;
    this.checkAuth(got);
  }

  private checkAuth([user, password]: string[]): void {
    const want = this.sink.opts.auth;
    if (!want || user !== want.user || password !== want.password) return this.reply('535 5.7.8 bad credentials');
    this.authUser = user;
    this.reply('235 2.7.0 ok');
  }
}
