/**
 * The PostgreSQL side of the shared queue, as the queue and scheduler roles of one node share it:
 * where the database is (`queue url` or TSMTPD_QUEUE_URL), which node this is, how long a lease
 * lasts, and one connection pool per process. Every statement has a timeout and a dropped
 * connection is an error of that statement only: a database that goes away costs clients a 451,
 * never the process.
 */
import type { Config } from '../config/types.js';
import { hostname } from 'node:os';
import pg from 'pg';
import { log } from '../log.js';
import { QueueError } from './backend.js';

/** A lease lasts this long unless `queue lease` says otherwise: a dead node's mail waits at most this. */
export const DEFAULT_LEASE = 60;
/** No statement of the queue waits longer: past it, the client gets its 451. */
const STATEMENT_TIMEOUT_MS = 10_000;
const CONNECT_TIMEOUT_MS = 5_000;
/** The channel a commit, a release or an admin command wakes the other nodes on. */
export const WAKE_CHANNEL = 'tsmtpd_queue';

export interface SharedQueueSettings {
  url: string;
  /** This node's name in leases: stable across restarts, distinct between nodes. */
  node: string;
  /** Seconds. */
  lease: number;
}

/**
 * `queue url` wins over TSMTPD_QUEUE_URL; the node defaults to host and spool, so two daemons of
 * one host differ. No url is an empty one, refused when the queue opens (checkUrl).
 */
export function sharedQueueSettings(q: Pick<Config['queue'], 'url' | 'node' | 'lease'>, spool: string, env = process.env): SharedQueueSettings {
  return { url: q.url ?? env.TSMTPD_QUEUE_URL ?? '', node: q.node ?? `${hostname()}:${spool}`, lease: q.lease ?? DEFAULT_LEASE };
}

export function checkUrl(s: SharedQueueSettings): void {
  if (!s.url) throw new QueueError('io', 'the postgres queue needs `queue url "postgresql://..."` in smtpd.conf or TSMTPD_QUEUE_URL');
}

const pools = new Map<string, { pool: pg.Pool; users: number }>();

/** The process's pool for `url`; each caller gives it back with releasePool. */
export function acquirePool(url: string): pg.Pool {
  let entry = pools.get(url);
  if (!entry) {
    const pool = new pg.Pool({
      connectionString: url,
      max: 8,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      query_timeout: STATEMENT_TIMEOUT_MS,
      statement_timeout: STATEMENT_TIMEOUT_MS,
      idleTimeoutMillis: 30_000,
    });
    // an idle connection the server or the network dropped: the pool replaces it on next use
    pool.on('error', (err) => log('warn', null, 'queue', 'queue-database', { error: err.message }));
    // a connection in use that breaks between two statements reports it to the client object,
    // where nobody listens: unheard, it would end the process; the next statement fails instead
    pool.on('connect', (client) => client.on('error', () => undefined));
    entry = { pool, users: 0 };
    pools.set(url, entry);
  }
  entry.users++;
  return entry.pool;
}

export async function releasePool(url: string): Promise<void> {
  const entry = pools.get(url);
  if (!entry || --entry.users > 0) return;
  pools.delete(url);
  await entry.pool.end().catch(() => undefined);
}

/**
 * A connection the server closed while it sat idle in the pool (a restart, a failover) fails
 * its next statement; a statement that failed that way never ran, so it is sent once more on a
 * fresh connection. SQLSTATE class 57 is the server shutting the session; no code is the socket.
 */
function connectionLost(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code.startsWith('57P') || code === 'ECONNRESET' || code === 'EPIPE';
  // a statement that timed out may have run: it is not sent again
  return code === undefined && !/timeout/i.test((err as Error | null)?.message ?? '');
}

/** Run `fn` in one transaction on one connection; rolled back on any error, which is rethrown as a QueueError. */
export async function transaction<T>(pool: pg.Pool, what: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      throw QueueError.from(err, what);
    }
    try {
      await client.query('BEGIN');
    } catch (err) {
      client.release(true);
      if (attempt === 0 && connectionLost(err)) continue;
      throw QueueError.from(err, what);
    }
    let broken = false;
    try {
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw QueueError.from(err, what);
    } finally {
      // a connection that could not even roll back is not given to the next caller
      client.release(broken || undefined);
    }
  }
}

/** One statement outside a transaction (each of ours may run twice), its failure a QueueError. */
export async function query<R extends pg.QueryResultRow>(pool: pg.Pool, what: string, text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
  try {
    return await pool.query<R>(text, values);
  } catch (err) {
    if (!connectionLost(err)) throw QueueError.from(err, what);
  }
  try {
    return await pool.query<R>(text, values);
  } catch (err) {
    throw QueueError.from(err, what);
  }
}

/**
 * A connection that LISTENs on the wake channel and calls `wake` for every notification; when
 * the connection drops it comes back on its own (and wakes once, since notifications were missed).
 */
export class WakeListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;

  constructor(private readonly url: string, private readonly wake: () => void) {}

  start(): void {
    this.stopped = false;
    void this.connect();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
    const again = (err?: Error) => {
      if (this.client !== client) return;
      this.client = undefined;
      if (err) log('warn', null, 'scheduler', 'queue-database', { error: err.message });
      client.end().catch(() => undefined);
      if (!this.stopped) this.retry = setTimeout(() => void this.connect(), 1000);
    };
    this.client = client;
    client.on('error', again);
    client.on('end', () => again());
    client.on('notification', () => this.wake());
    try {
      await client.connect();
      await client.query(`LISTEN ${WAKE_CHANNEL}`);
      this.wake();
    } catch (err) {
      again(err as Error);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }
}
