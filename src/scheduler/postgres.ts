/**
 * The shared scheduler on PostgreSQL (`-B scheduler=postgres`, with `-B queue=postgres`): the
 * envelope rows of the postgres queue carry when each is due and who holds it. A node claims due
 * rows with SELECT … FOR UPDATE SKIP LOCKED, so two nodes never take the same envelope, and
 * stamps them with its name and a lease expiry; a lease that ran out is free for the next claim.
 */
import type pg from 'pg';
import { log } from '../log.js';
import type { EnvelopeKind } from '../queue/envelope.js';
import { ensureSchema } from '../queue/postgres.js';
import { isEvpid, isMsgid } from '../queue/envelope.js';
import { acquirePool, checkUrl, query, releasePool, transaction, WAKE_CHANNEL, WakeListener, type SharedQueueSettings } from '../queue/pg-pool.js';
import type { Claim, SharedEntry, SharedSchedulerBackend } from './backend.js';

/** Free: never leased, or its lease ran out. `$1` is now. */
const FREE = '(lease_owner IS NULL OR lease_until <= $1)';

interface ClaimRow {
  evpid: string;
  kind: EnvelopeKind;
  created_at: string;
  expires_at: string;
  tries: number;
  prev: string | null;
}

export class PostgresScheduler implements SharedSchedulerBackend {
  private handle: pg.Pool | undefined;
  private listener: WakeListener | undefined;
  private wake: () => void = () => {};

  constructor(readonly settings: SharedQueueSettings) {}

  private get pool(): pg.Pool {
    if (!this.handle) throw new Error('postgres scheduler is not open');
    return this.handle;
  }

  /** The database may be away: the first round that reaches it finds the tables (the queue makes them too). */
  async open(): Promise<void> {
    checkUrl(this.settings);
    this.handle = acquirePool(this.settings.url);
    await ensureSchema(this.handle).catch((err: Error) => log('warn', null, 'scheduler', 'queue-database', { op: 'schema', error: err.message }));
    this.listener = new WakeListener(this.settings.url, () => this.wake());
    this.listener.start();
  }

  async close(): Promise<void> {
    await this.listener?.stop();
    this.listener = undefined;
    if (!this.handle) return;
    this.handle = undefined;
    await releasePool(this.settings.url);
  }

  onWake(fn: () => void): void {
    this.wake = fn;
  }

  private notify(c: pg.PoolClient | pg.Pool): Promise<unknown> {
    return c.query(`SELECT pg_notify('${WAKE_CHANNEL}', '')`);
  }

  async releaseAll(): Promise<number> {
    const res = await query(this.pool, 'release leases',
      'UPDATE tsmtpd_envelopes SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1', [this.settings.node]);
    return res.rowCount ?? 0;
  }

  async claim(now: number, max: number, kinds: ReadonlySet<EnvelopeKind>, warnIntervals: number[]) {
    const until = now + this.settings.lease;
    return transaction(this.pool, 'claim', async (c) => {
      const claimed = max <= 0 ? [] : (await c.query<ClaimRow>(`
        WITH due AS (
          SELECT evpid, lease_owner AS prev FROM tsmtpd_envelopes
          WHERE NOT suspended AND ${FREE} AND ((next_try <= $1 AND kind = ANY($4)) OR expires_at <= $1)
          ORDER BY next_try, evpid LIMIT $5 FOR UPDATE SKIP LOCKED)
        UPDATE tsmtpd_envelopes e SET lease_owner = $2, lease_until = $3 FROM due WHERE e.evpid = due.evpid
        RETURNING e.evpid, e.kind, e.created_at, e.expires_at, e.tries, due.prev`,
      [now, this.settings.node, until, [...kinds], max])).rows;
      // a delay notice needs no lease, only to be sent once: the row says it was
      const warn = warnIntervals.length === 0 ? [] : (await c.query<{ evpid: string }>(`
        UPDATE tsmtpd_envelopes SET last_warn = $1 WHERE evpid IN (
          SELECT evpid FROM tsmtpd_envelopes
          WHERE NOT suspended AND ${FREE} AND tries > 0 AND expires_at > $1
            AND EXISTS (SELECT 1 FROM unnest($2::bigint[]) d WHERE created_at + d > last_warn AND created_at + d <= $1)
          LIMIT 100 FOR UPDATE SKIP LOCKED)
        RETURNING evpid`, [now, warnIntervals])).rows.map((r) => r.evpid);
      const out = { deliver: [] as Claim[], expire: [] as Claim[], warn };
      for (const r of claimed.sort((a, b) => (a.evpid < b.evpid ? -1 : 1))) {
        const claim: Claim = { evpid: r.evpid, kind: r.kind, createdAt: Number(r.created_at), tries: r.tries, takenFrom: r.prev };
        (Number(r.expires_at) <= now ? out.expire : out.deliver).push(claim);
      }
      return out;
    });
  }

  async renew(now: number, evpids: string[]): Promise<string[]> {
    if (evpids.length === 0) return [];
    const res = await query<{ evpid: string }>(this.pool, 'renew leases',
      'UPDATE tsmtpd_envelopes SET lease_until = $3 WHERE lease_owner = $2 AND evpid = ANY($1) RETURNING evpid',
      [evpids, this.settings.node, now + this.settings.lease]);
    return res.rows.map((r) => r.evpid);
  }

  async release(evpid: string, next: { tries: number; lastTry: number; nextTry: number }): Promise<void> {
    await query(this.pool, 'release lease',
      `UPDATE tsmtpd_envelopes SET lease_owner = NULL, lease_until = NULL, tries = $3, last_try = $4, next_try = $5
       WHERE evpid = $1 AND lease_owner = $2`, [evpid, this.settings.node, next.tries, next.lastTry, next.nextTry]);
  }

  async nextWakeAt(now: number, kinds: ReadonlySet<EnvelopeKind>): Promise<number> {
    const res = await query<{ at: string | null }>(this.pool, 'next wake', `
      SELECT LEAST(
        (SELECT min(next_try) FROM tsmtpd_envelopes WHERE NOT suspended AND ${FREE} AND kind = ANY($2)),
        (SELECT min(expires_at) FROM tsmtpd_envelopes WHERE NOT suspended AND ${FREE}),
        (SELECT min(lease_until) FROM tsmtpd_envelopes WHERE lease_until > $1)) AS at`, [now, [...kinds]]);
    const at = res.rows[0]?.at;
    return at === null || at === undefined ? Infinity : Number(at);
  }

  async list(now: number, msgid?: string): Promise<SharedEntry[]> {
    const res = await query<{ evpid: string; tries: number; last_try: string; next_try: string; expires_at: string; suspended: boolean; lease_owner: string | null; lease_until: string | null }>(
      this.pool, 'list',
      `SELECT evpid, tries, last_try, next_try, expires_at, suspended, lease_owner, lease_until FROM tsmtpd_envelopes
       WHERE $1::text IS NULL OR msgid = $1 ORDER BY evpid`, [msgid ?? null]);
    return res.rows.map((r) => {
      const held = r.lease_owner !== null && Number(r.lease_until) > now;
      return {
        evpid: r.evpid, tries: r.tries, lastTry: Number(r.last_try), nextTry: Number(r.next_try), expiresAt: Number(r.expires_at),
        suspended: r.suspended, state: held ? 'inflight' : 'pending', holder: held ? r.lease_owner : null,
      };
    });
  }

  async command(now: number, op: 'schedule' | 'remove' | 'suspend' | 'resume', target: string): Promise<string[]> {
    let where: string;
    if (target === 'all') where = '$2::text IS NULL';
    else if (isEvpid(target)) where = 'evpid = $2';
    else if (isMsgid(target)) where = 'msgid = $2';
    else throw new Error(`invalid envelope or message id: ${target}`);
    const set = {
      // due now; a paused envelope stays paused, as the local scheduler does it (rq_envelope_schedule)
      schedule: 'next_try = $1',
      suspend: 'suspended = true',
      resume: 'suspended = false',
      // leased to this node, so no other node starts delivering what is being removed
      remove: `lease_owner = $3, lease_until = $1 + $4`,
    }[op];
    const free = op === 'remove' ? ` AND ${FREE}` : '';
    // every statement names $1 and $2, so their types are known whichever op uses them
    const values: unknown[] = [now, target === 'all' ? null : target];
    if (op === 'remove') values.push(this.settings.node, this.settings.lease);
    return transaction(this.pool, op, async (c) => {
      const res = await c.query<{ evpid: string }>(`UPDATE tsmtpd_envelopes SET ${set} WHERE $1::bigint IS NOT NULL AND (${where})${free} RETURNING evpid`, values);
      if (op === 'schedule' || op === 'resume') await this.notify(c);
      return res.rows.map((r) => r.evpid);
    });
  }

  async count(): Promise<number> {
    const res = await query<{ n: string }>(this.pool, 'count', 'SELECT count(*) AS n FROM tsmtpd_envelopes');
    return Number(res.rows[0]?.n ?? 0);
  }
}
