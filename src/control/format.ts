/**
 * Text output of tsmtpctl, shaped like smtpctl's so existing scripts keep working: `key=value`
 * lines for stats, smtpctl's column layout for monitor.
 */

export interface StatLine {
  key: string;
  labels: Record<string, string>;
  value: number;
}

/** A labelled series prints as `key{name="value",...}`: split a line on its last `=`. */
export function statName(s: { key: string; labels: Record<string, string> }): string {
  const names = Object.keys(s.labels).sort();
  if (names.length === 0) return s.key;
  return `${s.key}{${names.map((n) => `${n}=${JSON.stringify(s.labels[n])}`).join(',')}}`;
}

export function humanDuration(seconds: number): string {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `${d} days, ${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
}

export function formatStats(data: { uptime: number; stats: StatLine[] }): string {
  const lines = data.stats.map((s) => `${statName(s)}=${s.value}`);
  lines.push(`uptime=${data.uptime}`, `uptime.human=${humanDuration(data.uptime)}`);
  return lines.join('\n') + '\n';
}

/** The counters `monitor` shows, summed over labels, and where each comes from. */
export const MONITOR_COLUMNS: { title: string; key: string; delta: boolean }[] = [
  { title: 'curr', key: 'smtp.session', delta: false },
  { title: 'conn', key: 'smtp.session.total', delta: true },
  { title: 'disc', key: 'smtp.session.closed', delta: true },
  { title: 'curr', key: 'scheduler.envelope', delta: false },
  { title: 'enq', key: 'scheduler.envelope.enqueued', delta: true },
  { title: 'deq', key: 'scheduler.envelope.dequeued', delta: true },
  { title: 'ok', key: 'scheduler.delivery.ok', delta: true },
  { title: 'tmpfail', key: 'scheduler.delivery.tempfail', delta: true },
  { title: 'prmfail', key: 'scheduler.delivery.permfail', delta: true },
  { title: 'loop', key: 'scheduler.delivery.loop', delta: true },
  { title: 'expire', key: 'scheduler.envelope.expired', delta: true },
  { title: 'remove', key: 'scheduler.envelope.removed', delta: true },
  { title: 'bounce', key: 'queue.bounce', delta: true },
];

export const MONITOR_HEADER =
  '--- client ---  -- envelope --   ---- relay/delivery --- ------- misc -------\n' +
  'curr conn disc  curr  enq  deq   ok tmpfail prmfail loop expire remove bounce\n';

export function sumByKey(stats: StatLine[]): Map<string, number> {
  const sums = new Map<string, number>();
  for (const s of stats) sums.set(s.key, (sums.get(s.key) ?? 0) + s.value);
  return sums;
}

/** One monitor row: levels as they are, counters as the change since the previous sample. */
export function monitorRow(now: Map<string, number>, before: Map<string, number> | null): string {
  const widths = [4, 4, 4, 5, 4, 4, 4, 7, 7, 4, 6, 6, 6];
  const seps = ['', ' ', ' ', '  ', ' ', ' ', '  ', ' ', ' ', ' ', ' ', ' ', ' '];
  return MONITOR_COLUMNS.map((c, i) => {
    const v = now.get(c.key) ?? 0;
    const shown = c.delta ? (before ? v - (before.get(c.key) ?? 0) : 0) : v;
    return seps[i] + String(shown).padStart(widths[i]!);
  }).join('') + '\n';
}
