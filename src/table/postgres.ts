/** `postgres:` tables in table-postgres' format, over a pg pool with named prepared statements. */
import pg from 'pg';
import type { ExtrasConfig } from './extras-config.js';
import { parseConninfo } from './pg-conninfo.js';
import type { SqlFlavor, SqlPool } from './remote-sql.js';
import { TableError } from './types.js';

export const postgresFlavor: SqlFlavor = {
  who: 'table-postgres',
  connect(conf: ExtrasConfig, timeoutMs: number, onIdleError: (err: Error) => void): SqlPool {
    const conninfo = conf.get('conninfo');
    if (!conninfo) throw new TableError('table-postgres: missing "conninfo" configuration directive');
    const pool = new pg.Pool({
      connectionTimeoutMillis: timeoutMs,
      ...parseConninfo(conninfo),
      max: 4,
      idleTimeoutMillis: 30_000,
      // the server gives up too, so a slow query does not hold a connection after we stopped waiting
      statement_timeout: timeoutMs,
      query_timeout: timeoutMs,
    });
    // an idle connection that dies (server restart) must not take the process with it
    pool.on('error', onIdleError);
    return {
      async query(name, sql, params) {
        const res = await pool.query({ name: `tsmtpd_${name}`, text: sql, values: params, rowMode: 'array' });
        return res.rows as unknown[][];
      },
      end: () => pool.end(),
    };
  },
  // SQLSTATE classes 08 (connection), 53 (resources), 57 (operator: shutdown, cancel), 58 (system);
  // an error without one is the network's or the driver's
  isDown: (err) => !(err instanceof pg.DatabaseError) || /^(08|53|57|58)/.test(err.code ?? ''),
};
