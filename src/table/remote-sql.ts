/**
 * Tables in a database server (table-postgres, table-mysql of OpenSMTPD-extras): a pool of
 * connections, one prepared statement per `query_SERVICE` of the config file, and a time limit
 * on each query. A server that cannot answer fails the lookup as a tempfail (the client gets
 * 451), never as "not found". The statements are tried once at start and at every update, so a
 * wrong query is a config error; a server that is down at start is not (table-postgres starts
 * without it too), and the first lookups tempfail until it is back.
 */
import { log } from '../log.js';
import { withDeadline } from './deadline.js';
import { readExtrasConfig, type ExtrasConfig } from './extras-config.js';
import { SourceList } from './source-list.js';
import { rowsToValue } from './sql-rows.js';
import type { TableBackend, TableService } from './types.js';
import { TableError } from './types.js';

/** A pool of connections to one database. */
export interface SqlPool {
  /** Runs the statement called `name` (prepared on each connection once), rows as arrays. */
  query(name: string, sql: string, params: string[], timeoutMs: number): Promise<unknown[][]>;
  end(): Promise<void>;
}

/** What differs between database servers. */
export interface SqlFlavor {
  /** The extras' program name, used in messages: `table-postgres`. */
  who: string;
  connect(conf: ExtrasConfig, timeoutMs: number, onIdleError: (err: Error) => void): SqlPool;
  /** The server is unreachable or went away (the query may work again), rather than refusing it. */
  isDown(err: unknown): boolean;
}

export const DEFAULT_QUERY_TIMEOUT_MS = 5000;

interface Loaded {
  pool: SqlPool;
  queries: Map<string, string>;
  sources: SourceList;
}

export class RemoteSqlBackend implements TableBackend {
  readonly services = 'all' as const;
  private loaded: Loaded | undefined;

  constructor(
    private readonly flavor: SqlFlavor,
    private readonly path: string,
    private readonly timeoutMs = DEFAULT_QUERY_TIMEOUT_MS,
  ) {}

  async open(): Promise<void> {
    this.loaded = await this.load(false);
  }

  /** `tsmtpctl update table`: the new config must connect and prepare, else the old one stays. */
  async update(): Promise<void> {
    const next = await this.load(true);
    const old = this.loaded;
    this.loaded = next;
    await old?.pool.end().catch(() => undefined);
  }

  private async load(mustConnect: boolean): Promise<Loaded> {
    const { who } = this.flavor;
    const conf = await readExtrasConfig(this.path, who);
    const queries = new Map([...conf].filter(([k]) => k.startsWith('query_') || k === 'fetch_source'));
    const sources = new SourceList(conf, `${who}: ${this.path}`);
    const pool = this.flavor.connect(conf, this.timeoutMs, (err) =>
      log('warn', null, 'lka', 'table-error', { table: this.path, backend: who, error: err.message }));
    try {
      for (const [name, sql] of queries) await this.exec(pool, name, sql, name === 'fetch_source' ? [] : ['']);
    } catch (err) {
      const down = this.flavor.isDown(err);
      if (mustConnect || !down) {
        await pool.end().catch(() => undefined);
        throw new TableError(`${who}: ${down ? '' : 'preparing statements: '}${(err as Error).message}`, down);
      }
      log('warn', null, 'lka', 'table-error', { table: this.path, backend: who, error: `could not connect: ${(err as Error).message}` });
    }
    return { pool, queries, sources };
  }

  private exec(pool: SqlPool, name: string, sql: string, params: string[]): Promise<unknown[][]> {
    return withDeadline(pool.query(name, sql, params, this.timeoutMs), this.timeoutMs + 500, `${this.flavor.who} ${name}`);
  }

  /** One statement; a connection lost under it is retried once on a fresh one, as the extras reconnect. */
  private async run(name: string, params: string[]): Promise<unknown[][]> {
    const loaded = this.loaded;
    const sql = loaded?.queries.get(name);
    if (!loaded || sql === undefined) throw new TableError(`${this.flavor.who}: ${this.path} has no ${name}`, true);
    try {
      try {
        return await this.exec(loaded.pool, name, sql, params);
      } catch (err) {
        if (!this.flavor.isDown(err)) throw err;
        return await this.exec(loaded.pool, name, sql, params);
      }
    } catch (err) {
      throw new TableError(`${this.flavor.who} ${name}: ${(err as Error).message}`, true);
    }
  }

  async lookup(service: TableService, key: string): Promise<string | undefined> {
    return rowsToValue(service, await this.run(`query_${service}`, [key.toLowerCase()]));
  }

  async check(service: TableService, key: string): Promise<boolean> {
    return (await this.run(`query_${service}`, [key.toLowerCase()])).length > 0;
  }

  async entries(service: TableService): Promise<string[]> {
    throw new TableError(`${this.flavor.who} tables cannot list ${service} entries`);
  }

  async fetch(service: TableService): Promise<string | undefined> {
    if (service !== 'source') throw new TableError(`${this.flavor.who} tables fetch only sources`, true);
    if (!this.loaded) throw new TableError(`${this.flavor.who}: not open`, true);
    return this.loaded.sources.fetch(async () => (await this.run('fetch_source', [])).map((r) => String(r[0])));
  }

  async close(): Promise<void> {
    const old = this.loaded;
    this.loaded = undefined;
    await old?.pool.end().catch(() => undefined);
  }
}
