/**
 * The stat role: every other role counts events by sending it `stat.increment`; it alone holds
 * the stat backend, so counters can later move to a process of their own. With `stat listen on`
 * in the config it also serves the counters to Prometheus.
 */
import type { Server } from 'node:http';
import type { Role } from '../bus/bus.js';
import { PEERS } from '../bus/messages.js';
import type { RoleContext } from '../daemon/context.js';
import { log } from '../log.js';
import { formatPrometheus, servePrometheus } from './prometheus.js';
import { createStatBackend } from './registry.js';
import { trace } from '../trace.js';

export function createStatRole(ctx: RoleContext): Role<'stat'> {
  const backend = createStatBackend(ctx.backends.stat);
  const startedAt = ctx.clock.now();
  let http: Server | null = null;
  return {
    name: 'stat',
    peers: PEERS.stat,
    handlers: {
      'stat.increment': (req) => {
        trace('stat', null, 'stat', { op: 'increment', key: req.key, by: req.by ?? 1 });
        backend.increment(req.key, req.labels ?? {}, req.by ?? 1);
      },
      'stat.decrement': (req) => {
        trace('stat', null, 'stat', { op: 'decrement', key: req.key, by: req.by ?? 1 });
        backend.decrement(req.key, req.labels ?? {}, req.by ?? 1);
      },
      'stat.set': (req) => backend.set(req.key, req.labels ?? {}, req.value),
      'control.stat.list': () => ({ stats: backend.iterate() }),
    },
    async start() {
      const listen = ctx.config.statListen;
      if (!listen) return;
      const uptime = () => Math.floor((ctx.clock.now() - startedAt) / 1000);
      http = await servePrometheus(listen.address, listen.port, async () => formatPrometheus(backend.iterate(), uptime()));
      log('info', null, 'stat', 'listen', { address: listen.address, port: listen.port, format: 'prometheus' });
    },
    async stop() {
      const server = http;
      http = null;
      if (server) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
      backend.close();
    },
  };
}
