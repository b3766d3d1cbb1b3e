/**
 * The db backend: the Berkeley DB hash files that OpenSMTPD's makemap and newaliases write (what
 * existing installs have), or the SQLite file tsmtpd's own makemap writes; the file's first bytes
 * say which. The file is loaded whole, and loaded again when its mtime changes, as smtpd's
 * table_db_lookup() reopens a changed file, so a newaliases run is seen without a reload.
 */
import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import Database from 'better-sqlite3';
import { log } from '../log.js';
import { looksLikeBdb, readBdbHash } from './bdb-hash.js';
import { MemoryBackend, type Contents } from './memory.js';
import type { TableService } from './types.js';
import { TableError } from './types.js';

/** Schema shared with makemap; `meta.kind` records list versus map. */
export const DB_SCHEMA = [
  'CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)',
  'CREATE TABLE entries (key TEXT PRIMARY KEY, value TEXT NOT NULL)',
];

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
/** makemap -t set stores this as every value (makemap.c add_setentry). */
const SET_VALUE = '<set>';

function readSqlite(path: string): Contents {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const kindRow = db.prepare("SELECT value FROM meta WHERE name = 'kind'").get() as { value: string } | undefined;
    const rows = db.prepare('SELECT key, value FROM entries').all() as { key: string; value: string }[];
    const kind = kindRow?.value === 'map' ? 'map' : 'list';
    return { kind, entries: new Map(rows.map((r) => [String(r.key).toLowerCase(), String(r.value)])) };
  } finally {
    db?.close();
  }
}

/** makemap's keys and values are C strings stored with their NUL. */
function cString(b: Buffer): string {
  return b.toString('utf8', 0, b.length > 0 && b[b.length - 1] === 0 ? b.length - 1 : b.length);
}

function readBerkeley(bytes: Buffer): Contents {
  const pairs = readBdbHash(bytes).map(([k, v]) => [cString(k).toLowerCase(), cString(v)] as [string, string]);
  // an empty file is a mapping, as smtpd treats an empty table
  const list = pairs.length > 0 && pairs.every(([, v]) => v === SET_VALUE);
  return { kind: list ? 'list' : 'map', entries: new Map(pairs.map(([k, v]) => [k, list ? '' : v])) };
}

export function readDb(path: string): Contents {
  try {
    const bytes = readFileSync(path);
    if (bytes.subarray(0, SQLITE_MAGIC.length).equals(SQLITE_MAGIC)) return readSqlite(path);
    if (looksLikeBdb(bytes)) return readBerkeley(bytes);
    throw new Error('neither a Berkeley DB hash file nor a tsmtpd makemap file');
  } catch (e) {
    throw new TableError(`${path}: ${(e as Error).message}`);
  }
}

/** A MemoryBackend that loads the file again when its mtime has changed since the last load. */
class DbBackend extends MemoryBackend {
  private mtime = 0;

  constructor(private readonly path: string) {
    super(async () => {
      const before = (await stat(path)).mtimeMs;
      const contents = readDb(path);
      this.mtime = before;
      return contents;
    });
  }

  private async fresh(): Promise<void> {
    const now = await stat(this.path).then((s) => s.mtimeMs, () => this.mtime);
    // a file that fails to load keeps the old contents serving, as update() does
    if (now === this.mtime) return;
    await this.update().catch((err: Error) => {
      this.mtime = now;
      log('warn', null, 'lka', 'table-update', { path: this.path, error: err.message });
    });
  }

  override async lookup(service: TableService, key: string): Promise<string | undefined> {
    await this.fresh();
    return super.lookup(service, key);
  }

  override async entries(service: TableService): Promise<string[]> {
    await this.fresh();
    return super.entries(service);
  }
}

export function dbBackend(path: string): MemoryBackend {
  return new DbBackend(path.replace(/^db:/, ''));
}
