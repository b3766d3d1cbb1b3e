/**
 * `redis:` tables in table-redis' format: `master`/`master_port` (a `unix:` path or a host,
 * 127.0.0.1:6379 by default), an optional `slave`/`slave_port` asked when the master cannot be,
 * `password`, `database`, and one command per service (`query_alias GET alias:%s` and so on by
 * default), `%s` standing for the key within an argument as hiredis formats it. Each command has
 * a time limit; a server that is away fails the lookup as a tempfail, never as "not found".
 */
import { createClient } from 'redis';
import { log } from '../log.js';
import { withDeadline } from './deadline.js';
import { intOption, readExtrasConfig, type ExtrasConfig } from './extras-config.js';
import { DEFAULT_QUERY_TIMEOUT_MS } from './remote-sql.js';
import type { TableBackend, TableService } from './types.js';
import { TableError } from './types.js';

type Client = ReturnType<typeof client>;
type Reply = string | number | null | Reply[] | Buffer;

const WHO = 'table-redis';

function client(host: string, port: number, conf: ExtrasConfig, timeoutMs: number, onError: (e: Error) => void) {
  const c = createClient({
    socket: {
      ...(host.startsWith('unix:') ? { path: host.slice(5) } : { host, port }),
      connectTimeout: timeoutMs,
      // keep trying in the background; lookups meanwhile fail at once instead of queueing
      reconnectStrategy: (retries: number) => Math.min(100 * (retries + 1), 2000),
    },
    disableOfflineQueue: true,
    // hiredis' reply types: nil, strings, integers and arrays
    RESP: 2,
    ...(conf.get('password') !== undefined ? { password: conf.get('password') } : {}),
    database: intOption(conf, 'database', 0, 0, 256, WHO),
  });
  // the client reports every failed (re)connection here; unheard, it would end the process
  c.on('error', onError);
  return c;
}

/** `GET alias:%s` with key k → ['GET', 'alias:k']. */
export function redisCommand(template: string, key: string): string[] {
  return template.trim().split(/\s+/).map((arg) => arg.replaceAll('%s', key));
}

interface Loaded {
  servers: Client[];
  queries: ExtrasConfig;
}

export class RedisBackend implements TableBackend {
  readonly services = 'all' as const;
  private loaded: Loaded | undefined;
  private lastError = '';

  constructor(private readonly path: string, private readonly timeoutMs = DEFAULT_QUERY_TIMEOUT_MS) {}

  async open(): Promise<void> {
    this.loaded = await this.load(false);
  }

  async update(): Promise<void> {
    const next = await this.load(true);
    const old = this.loaded;
    this.loaded = next;
    if (old) for (const c of old.servers) c.destroy();
  }

  private async load(mustConnect: boolean): Promise<Loaded> {
    const conf = await readExtrasConfig(this.path, WHO);
    const onError = (e: Error) => {
      // one line per distinct failure, not one per reconnection attempt
      if (e.message === this.lastError) return;
      this.lastError = e.message;
      log('warn', null, 'lka', 'table-error', { table: this.path, backend: WHO, error: e.message });
    };
    const servers = [client(conf.get('master') ?? '127.0.0.1', intOption(conf, 'master_port', 6379, 0, 65535, WHO), conf, this.timeoutMs, onError)];
    const slave = conf.get('slave');
    if (slave) servers.push(client(slave, intOption(conf, 'slave_port', 6380, 0, 65535, WHO), conf, this.timeoutMs, onError));
    const connecting = servers.map((c) => c.connect());
    for (const p of connecting) p.catch(() => undefined);
    // wait for one server (so the first lookups find it), but only a reload requires one
    try {
      await withDeadline(Promise.any(connecting), this.timeoutMs, 'connect');
    } catch (err) {
      const e = err as Error & { errors?: Error[] };
      const why = `could not connect: ${e.errors?.[0]?.message ?? e.message}`;
      if (mustConnect) {
        for (const c of servers) c.destroy();
        throw new TableError(`${WHO}: ${why}`, true);
      }
      log('warn', null, 'lka', 'table-error', { table: this.path, backend: WHO, error: why });
    }
    return { servers, queries: conf };
  }

  /** The command for SERVICE on the first server that is up; the next one if that one fails on the way. */
  private async query(service: TableService, key: string): Promise<Reply> {
    const loaded = this.loaded;
    if (!loaded) throw new TableError(`${WHO}: not open`, true);
    const args = redisCommand(loaded.queries.get(`query_${service}`) ?? `GET ${service}:%s`, key.toLowerCase());
    let last: unknown = new Error('no server is connected');
    for (const c of loaded.servers) {
      if (!c.isReady) continue;
      try {
        const reply = c.sendCommand<Reply>(args, { timeout: this.timeoutMs });
        reply.catch(() => undefined);
        return await withDeadline(reply, this.timeoutMs, c.isReady ? "the server" : "the connection");
      } catch (err) {
        last = err;
      }
    }
    throw new TableError(`${WHO} ${service}: ${(last as Error).message}`, true);
  }

  async check(service: TableService, key: string): Promise<boolean> {
    const r = await this.query(service, key);
    if (typeof r === 'number') return r !== 0;
    if (Array.isArray(r)) return r.length > 0;
    return r !== null;
  }

  /** table_redis_lookup(): lists join with `, ` for aliases, `:` for the rest; credentials keep the hash. */
  async lookup(service: TableService, key: string): Promise<string | undefined> {
    const r = await this.query(service, key);
    if (r === null) return undefined;
    const multi = service === 'alias' || service === 'mailaddrmap' || service === 'credentials' || service === 'userinfo';
    if (Array.isArray(r)) {
      if (!multi) throw new TableError(`${WHO} ${service}: a list where one value is wanted`, true);
      if (r.length === 0) return undefined;
      const parts = r.map(String);
      if (service === 'credentials') return parts[parts.length - 1];
      return parts.join(service === 'alias' || service === 'mailaddrmap' ? ', ' : ':');
    }
    if (typeof r === 'number') throw new TableError(`${WHO} ${service}: a number where a value is wanted`, true);
    const v = String(r);
    // `user:hash`, as smtpd's table_parse_lookup() splits credentials
    if (service === 'credentials' && v.indexOf(':') > 0) return v.slice(v.indexOf(':') + 1);
    return v;
  }

  async entries(service: TableService): Promise<string[]> {
    throw new TableError(`${WHO} tables cannot list ${service} entries`);
  }

  async fetch(service: TableService): Promise<string | undefined> {
    // table_redis_fetch() answers nothing either
    throw new TableError(`${WHO} tables cannot fetch ${service}`, true);
  }

  async close(): Promise<void> {
    const old = this.loaded;
    this.loaded = undefined;
    if (old) for (const c of old.servers) c.destroy();
  }
}
