/**
 * The `fetch_source` list of the SQL extras tables: read again after `fetch_source_expire`
 * seconds (default 60) or `fetch_source_refresh` calls (default 1000), handed out in turn —
 * table_postgres_fetch() and table_mysql_fetch().
 */
import { intOption, type ExtrasConfig } from './extras-config.js';

export class SourceList {
  private sources: string[] = [];
  private next = 0;
  private calls = 0;
  private loadedAt = -Infinity;
  private readonly expireMs: number;
  private readonly refresh: number;

  constructor(conf: ExtrasConfig, who: string, private readonly now: () => number = Date.now) {
    this.expireMs = intOption(conf, 'fetch_source_expire', 60, 0, 2 ** 31 - 1, who) * 1000;
    this.refresh = intOption(conf, 'fetch_source_refresh', 1000, 0, 2 ** 31 - 1, who);
  }

  /** The next source; `load` runs when the list is stale, and its failure leaves the old list. */
  async fetch(load: () => Promise<string[]>): Promise<string | undefined> {
    if (this.calls >= this.refresh || this.now() - this.loadedAt >= this.expireMs) {
      // the set, in a stable order: as the extras' dict, a value listed twice is one source
      this.sources = [...new Set(await load())].sort();
      this.next = 0;
      this.calls = 0;
      this.loadedAt = this.now();
    }
    this.calls++;
    if (this.sources.length === 0) return undefined;
    return this.sources[this.next++ % this.sources.length];
  }
}
