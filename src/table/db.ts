/** The db backend: the SQLite file makemap writes, opened read-only and loaded whole. */
import Database from 'better-sqlite3';
import { MemoryBackend, type Contents } from './memory.js';
import { TableError } from './types.js';

/** Schema shared with makemap; `meta.kind` records list versus map. */
export const DB_SCHEMA = [
  'CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)',
  'CREATE TABLE entries (key TEXT PRIMARY KEY, value TEXT NOT NULL)',
];

export function readDb(path: string): Contents {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const kindRow = db.prepare("SELECT value FROM meta WHERE name = 'kind'").get() as { value: string } | undefined;
    const rows = db.prepare('SELECT key, value FROM entries').all() as { key: string; value: string }[];
    const kind = kindRow?.value === 'map' ? 'map' : 'list';
    return { kind, entries: new Map(rows.map((r) => [String(r.key).toLowerCase(), String(r.value)])) };
  } catch (e) {
    throw new TableError(`${path}: ${(e as Error).message}`);
  } finally {
    db?.close();
  }
}

export function dbBackend(path: string): MemoryBackend {
  const clean = path.replace(/^db:/, '');
  return new MemoryBackend(async () => readDb(clean));
}
