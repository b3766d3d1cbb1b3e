/**
 * A throw-away PostgreSQL database for a test: created on the machine's server (127.0.0.1:5432,
 * trust auth, which .ci/run sets up; TSMTPD_TEST_PG overrides the admin url) and dropped after.
 * A server that is not there skips the test, unless TSMTPD_REQUIRE_PEERS=1 makes it a failure.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const PG_ADMIN_URL = process.env.TSMTPD_TEST_PG ?? 'postgresql://postgres@127.0.0.1:5432/test';

let reachable: Promise<boolean> | undefined;

/** The `skip` option of a test that needs the server. */
export async function pgSkip(): Promise<string | false> {
  reachable ??= (async () => {
    const c = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 });
    try {
      await c.connect();
      await c.query('SELECT 1');
      return true;
    } catch {
      return false;
    } finally {
      await c.end().catch(() => undefined);
    }
  })();
  if (await reachable) return false;
  if (process.env.TSMTPD_REQUIRE_PEERS === '1') throw new Error(`PostgreSQL is not reachable at ${PG_ADMIN_URL} (.ci/run sets it up)`);
  return `no PostgreSQL at ${PG_ADMIN_URL}`;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** A url to a new empty database; `after` drops it (closing whatever still uses it). */
export async function pgDatabase(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const name = `tsmtpd_t_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  t.after(() => admin(async (c) => void (await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))));
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** One statement on the database at `url`, for tests that look behind the daemon's back. */
export async function pgQuery<R extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<R>(text, values)).rows;
  } finally {
    await c.end().catch(() => undefined);
  }
}
