/**
 * The machine's database services for table tests: admin connections to create and drop what a
 * test needs under names no other test uses, and a TCP proxy a test can cut to take "the
 * database" away without touching the shared server.
 */
import { randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { createClient } from 'redis';
import { PG_ADMIN_URL } from './pg-db.js';

/** The server pg-db.ts uses (TSMTPD_TEST_PG may move it), in the parts a table's conninfo names. */
const pgUrl = new URL(PG_ADMIN_URL);
export const PG_ADMIN = { host: pgUrl.hostname, port: Number(pgUrl.port || 5432), user: decodeURIComponent(pgUrl.username || 'postgres'), database: pgUrl.pathname.slice(1) || 'test' };
export const MYSQL_ADMIN = { host: '127.0.0.1', port: 3306, user: 'root', password: '', database: 'test' };
export const REDIS_PORT = 6379;

/** `prefix_<pid>_<random>`: a table or key name of this test alone. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

export async function pgAdmin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client(PG_ADMIN);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export async function mysqlAdmin<T>(fn: (c: mysql.Connection) => Promise<T>): Promise<T> {
  const c = await mysql.createConnection(MYSQL_ADMIN);
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Only the raw commands tests need, so the client's generic types stay out of the signature. */
export interface RedisAdmin {
  sendCommand<T = unknown>(args: string[]): Promise<T>;
}

export async function redisAdmin<T>(fn: (c: RedisAdmin) => Promise<T>): Promise<T> {
  const c = createClient({ socket: { host: '127.0.0.1', port: REDIS_PORT, reconnectStrategy: false } });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await fn({ sendCommand: (args) => c.sendCommand(args) });
  } finally {
    c.destroy();
  }
}

/**
 * A loopback port forwarding to `target`. `cut()` drops every connection and refuses new ones
 * until `restore()`; `stall()` keeps connections open but passes nothing (a server that hangs).
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private stalled = false;
  port = 0;

  constructor(private readonly target: number) {}

  async start(): Promise<this> {
    const server = createServer((client) => {
      if (this.stalled) {
        this.sockets.add(client.on('error', () => undefined).on('close', () => this.sockets.delete(client)));
        return;
      }
      const upstream = connect(this.target, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => this.sockets.delete(s));
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((res, rej) => server.once('error', rej).listen(this.port, '127.0.0.1', () => res()));
    this.port = (server.address() as { port: number }).port;
    this.server = server;
    return this;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((res) => server.close(() => res()));
  }

  async restore(): Promise<this> {
    if (this.server) await this.cut();
    this.stalled = false;
    return this.start();
  }

  /** From now on nothing passes: established connections are held silent, new ones accepted and ignored. */
  stall(): void {
    this.stalled = true;
    for (const s of this.sockets) {
      s.unpipe();
      s.pause();
    }
  }
}
