/**
 * What the SQL table backends (sqlite, postgres, mysql) make of a query's rows, as the extras'
 * table_*_lookup(): alias (and mailaddrmap) rows join with `, `; userinfo's three columns with
 * `:`; credentials' last column is the hash (the extras write `user:hash`, which smtpd splits);
 * every other service takes the first column of the first row.
 */
import type { TableService } from './types.js';

export function rowsToValue(service: TableService, rows: readonly (readonly unknown[])[]): string | undefined {
  if (rows.length === 0) return undefined;
  if (service === 'alias' || service === 'mailaddrmap') return rows.map((r) => String(r[0])).join(', ');
  const row = rows[0]!;
  if (service === 'userinfo') return row.map(String).join(':');
  if (service === 'credentials') return String(row[row.length - 1]);
  return String(row[0]);
}
