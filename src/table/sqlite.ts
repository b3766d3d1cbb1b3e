/** The sqlite backend: an OpenSMTPD-extras table-sqlite config file naming a database and queries. */
import { readFile } from 'node:fs/promises';
import Database from 'better-sqlite3';
import type { TableBackend, TableService } from './types.js';
import { TableError } from './types.js';
import { rowsToValue } from './sql-rows.js';

interface SqliteConfig {
  dbpath: string;
  queries: Map<string, string>;
}

/** `key value...` lines; `#` comments; the value (a query) runs to the end of the line. */
export function parseSqliteConfig(text: string): SqliteConfig {
  const queries = new Map<string, string>();
  let dbpath = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+)\s+(.*)$/.exec(line);
    if (!m) throw new TableError(`sqlite config: invalid line: ${line.slice(0, 64)}`);
    if (m[1] === 'dbpath') dbpath = m[2]!;
    else queries.set(m[1]!, m[2]!);
  }
  if (!dbpath) throw new TableError('sqlite config: no dbpath');
  return { dbpath, queries };
}

export class SqliteBackend implements TableBackend {
  readonly services = 'all' as const;
  private db: Database.Database | undefined;
  private config: SqliteConfig | undefined;
  private rotation = 0;

  constructor(private readonly path: string) {}

  async open(): Promise<void> {
    const config = parseSqliteConfig(await readFile(this.path, 'utf8').catch((e: Error) => {
      throw new TableError(`${this.path}: ${e.message}`);
    }));
    let db: Database.Database;
    try {
      db = new Database(config.dbpath, { readonly: true, fileMustExist: true });
    } catch (e) {
      throw new TableError(`${config.dbpath}: ${(e as Error).message}`);
    }
    this.db?.close();
    this.db = db;
    this.config = config;
  }

  update(): Promise<void> {
    return this.open();
  }

  private run(name: string, params: string[]): unknown[][] {
    const sql = this.config?.queries.get(name);
    if (!sql || !this.db) throw new TableError(`sqlite table has no ${name}`);
    try {
      return this.db.prepare(sql).raw(true).all(...params) as unknown[][];
    } catch (e) {
      throw new TableError(`sqlite ${name}: ${(e as Error).message}`, true);
    }
  }

  async lookup(service: TableService, key: string): Promise<string | undefined> {
    return rowsToValue(service, this.run(`query_${service}`, [key.toLowerCase()]));
  }

  async check(service: TableService, key: string): Promise<boolean> {
    return this.run(`query_${service}`, [key.toLowerCase()]).length > 0;
  }

  async entries(service: TableService): Promise<string[]> {
    throw new TableError(`sqlite tables cannot list ${service} entries`);
  }

  async fetch(service: TableService): Promise<string | undefined> {
    const rows = this.run(`fetch_${service}`, []);
    if (rows.length === 0) return undefined;
    return String(rows[this.rotation++ % rows.length]![0]);
  }

  async close(): Promise<void> {
    this.db?.close();
    this.db = undefined;
  }
}
