/**
 * `mysql:` tables (MySQL or MariaDB) in table-mysql's format — host, username, password,
 * database and the queries with `?` — over a mysql2 pool, whose execute() prepares each
 * statement once per connection. `port` is tsmtpd's addition (libmysqlclient reads it from
 * my.cnf); a host starting with `/` is the server's socket.
 */
import mysql from 'mysql2/promise';
import { intOption, type ExtrasConfig } from './extras-config.js';
import type { SqlFlavor, SqlPool } from './remote-sql.js';

export const mysqlFlavor: SqlFlavor = {
  who: 'table-mysql',
  connect(conf: ExtrasConfig, timeoutMs: number): SqlPool {
    const host = conf.get('host') ?? 'localhost';
    const pool = mysql.createPool({
      ...(host.startsWith('/') ? { socketPath: host } : { host, port: intOption(conf, 'port', 3306, 1, 65535, 'table-mysql') }),
      user: conf.get('username'),
      password: conf.get('password'),
      database: conf.get('database'),
      connectionLimit: 4,
      maxIdle: 4,
      idleTimeout: 30_000,
      connectTimeout: timeoutMs,
      enableKeepAlive: true,
    });
    return {
      async query(_name, sql, params) {
        const [rows] = await pool.execute({ sql, timeout: timeoutMs, rowsAsArray: true }, params);
        return rows as unknown[][];
      },
      end: () => pool.end(),
    };
  },
  // a server's refusal carries an SQLSTATE; class 08 and a fatal error mean the link, not the query
  isDown: (err) => {
    const e = err as { sqlState?: string; fatal?: boolean };
    return !e.sqlState || e.fatal === true || e.sqlState.startsWith('08');
  },
};
