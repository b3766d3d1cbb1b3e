/** The `ram` stat backend: everything in a Map, gone at restart, as OpenSMTPD's ramstat. */
import { seriesId, type StatBackend, type StatValue } from './backend.js';

export class RamStat implements StatBackend {
  private readonly series = new Map<string, StatValue>();

  increment(key: string, labels: Record<string, string>, by: number): void {
    this.entry(key, labels, 'counter').value += by;
  }

  decrement(key: string, labels: Record<string, string>, by: number): void {
    // a decremented key is a level (sessions open, envelopes queued), not a monotonic count
    const e = this.entry(key, labels, 'gauge');
    e.kind = 'gauge';
    e.value -= by;
  }

  set(key: string, labels: Record<string, string>, value: number): void {
    const e = this.entry(key, labels, 'gauge');
    e.kind = 'gauge';
    e.value = value;
  }

  iterate(): StatValue[] {
    return [...this.series.values()]
      .map((s) => ({ ...s, labels: { ...s.labels } }))
      .sort((a, b) => (seriesId(a.key, a.labels) < seriesId(b.key, b.labels) ? -1 : 1));
  }

  close(): void {
    this.series.clear();
  }

  private entry(key: string, labels: Record<string, string>, kind: StatValue['kind']): StatValue {
    const id = seriesId(key, labels);
    let e = this.series.get(id);
    if (!e) {
      e = { key, labels: { ...labels }, value: 0, kind };
      this.series.set(id, e);
    }
    return e;
  }
}
