/**
 * The stat backend's series in Prometheus' text exposition format (version 0.0.4), and the
 * opt-in HTTP listener that serves it (`stat listen on ADDR port N` in smtpd.conf).
 */
import { createServer, type Server } from 'node:http';
import type { StatValue } from './backend.js';

/** `smtp.session-tls` → `tsmtpd_smtp_session_tls`: metric names allow [a-zA-Z0-9_:] only. */
export function metricName(key: string, kind: StatValue['kind']): string {
  const base = 'tsmtpd_' + key.replace(/[^a-zA-Z0-9_:]/g, '_');
  return kind === 'counter' ? base + '_total' : base;
}

function labelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelName(n: string): string {
  const clean = n.replace(/[^a-zA-Z0-9_]/g, '_');
  return /^[a-zA-Z_]/.test(clean) ? clean : '_' + clean;
}

export function formatPrometheus(series: StatValue[], uptimeSeconds: number): string {
  const byName = new Map<string, StatValue[]>();
  for (const s of series) {
    const name = metricName(s.key, s.kind);
    byName.set(name, [...(byName.get(name) ?? []), s]);
  }
  let out = '# HELP tsmtpd_uptime_seconds Seconds since the daemon started.\n';
  out += '# TYPE tsmtpd_uptime_seconds gauge\n';
  out += `tsmtpd_uptime_seconds ${uptimeSeconds}\n`;
  for (const [name, group] of [...byName].sort(([a], [b]) => (a < b ? -1 : 1))) {
    // one TYPE per name: a key used both ways is a gauge, the weaker promise
    const kind = group.some((g) => g.kind === 'gauge') ? 'gauge' : 'counter';
    out += `# HELP ${name} tsmtpd stat ${group[0]!.key}\n# TYPE ${name} ${kind}\n`;
    for (const s of group) {
      const labels = Object.keys(s.labels).sort().map((n) => `${labelName(n)}="${labelValue(s.labels[n]!)}"`);
      out += `${name}${labels.length ? `{${labels.join(',')}}` : ''} ${s.value}\n`;
    }
  }
  return out;
}

export async function servePrometheus(
  address: string,
  port: number,
  render: () => Promise<string>,
): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/')) {
      res.writeHead(404).end();
      return;
    }
    render().then(
      (body) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });
  return server;
}
