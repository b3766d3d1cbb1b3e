/** Fixtures for the mta tests: a resolver answering from a map, and the mta role on a real bus. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bus, type Role } from '../../src/bus/bus.js';
import type { DeliveryResult, Handlers, MtaResult, RoleName } from '../../src/bus/messages.js';
import { systemClock } from '../../src/clock.js';
import type { Action, Config, RelayOptions } from '../../src/config/types.js';
import type { RoleContext } from '../../src/daemon/context.js';
import type { Answer, MxRecord, Resolver } from '../../src/dns/resolver.js';
import { createLkaRole } from '../../src/lka/role.js';
import { createMtaRole, type MtaOptions } from '../../src/mta/role.js';
import type { Envelope } from '../../src/queue/envelope.js';
import { config, envelope } from '../mda/helpers.js';

export interface DnsMap {
  mx?: Record<string, [number, string][] | 'nxdomain' | 'tempfail'>;
  a?: Record<string, string[]>;
}

/** Answers only from the map: no MX entry is NODATA, no A entry is NXDOMAIN; counts MX queries. */
export class MapResolver implements Resolver {
  mxQueries = 0;
  constructor(readonly map: DnsMap) {}
  async mx(name: string): Promise<Answer<MxRecord>> {
    this.mxQueries++;
    const v = this.map.mx?.[name];
    if (v === undefined) return { status: 'nodata' };
    if (v === 'nxdomain') return { status: 'nxdomain' };
    if (v === 'tempfail') return { status: 'tempfail', reason: 'test' };
    return { status: 'ok', records: v.map(([preference, exchange]) => ({ preference, exchange })), ttl: 60 };
  }
  async a(name: string): Promise<Answer<string>> {
    const v = this.map.a?.[name];
    return v ? { status: 'ok', records: v, ttl: 60 } : { status: 'nxdomain' };
  }
  async aaaa(): Promise<Answer<string>> {
    return { status: 'nodata' };
  }
  async txt(): Promise<Answer<string>> {
    return { status: 'nodata' };
  }
  async ptr(): Promise<Answer<string>> {
    return { status: 'nxdomain' };
  }
  close(): void {}
}

export function relayAction(relay: Partial<RelayOptions> = {}, name = 'out'): Action {
  return { name, method: { kind: 'relay' }, relay: { backup: false, tls: 'opportunistic', srs: false, ...relay }, where: { file: 'test.conf', line: 1 } };
}

export function mtaEnvelope(n: number, over: Partial<Envelope> = {}): Envelope {
  const msgid = over.msgid ?? '0000abcd';
  return envelope({ id: msgid + n.toString(16).padStart(8, '0'), msgid, kind: 'mta', action: 'out', rcpt: `user${n}@dst.test`, origRcpt: `user${n}@dst.test`, ...over });
}

export interface MtaHarness {
  deliver(e: Envelope, bodyPath?: string): Promise<DeliveryResult>;
  deliverAll(envelopes: Envelope[], bodyPath?: string): Promise<MtaResult[]>;
  counted: string[];
  /** The hold queues the mta released to the scheduler, with how many it let come back (0 = all). */
  released: { holdq: string; count: number }[];
  bodyPath: string;
  stop(): Promise<void>;
}

export async function startMta(actions: Action[], o: MtaOptions & { cfg?: Partial<Config> } = {}): Promise<MtaHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'tsmtpd-mta-'));
  const bodyPath = join(dir, 'body');
  await writeFile(bodyPath, 'Subject: test\r\n\r\nhello\r\n.dot\r\n');
  const bus = new Bus({ checkSerializable: true });
  const counted: string[] = [];
  const ctx: RoleContext = {
    config: config(actions, o.cfg ?? {}), bus: bus.endpoint('mta'), clock: systemClock, spool: dir,
    backends: { queue: 'fs', scheduler: 'ramqueue', stat: 'ram' }, serverName: 'mta.test', verbose: false,
  };
  const mta = createMtaRole(ctx, { timeouts: { connect: 3000, command: 5000, dataEnd: 5000 }, ...o });
  bus.register(mta);
  bus.register(stub('queue', ['mta'], {}));
  const released: { holdq: string; count: number }[] = [];
  bus.register(stub('scheduler', [], { 'mta.holdq.release': (r) => void released.push(r) }));
  // relay tables (credentials, relay hosts, sources) are the lka's to look up
  const lka = createLkaRole({ ...ctx, bus: bus.endpoint('lka') });
  bus.register(lka);
  await lka.start();
  bus.register(stub('stat', [], {
    'stat.increment': (r) => { counted.push(`${r.key}${r.labels ? JSON.stringify(r.labels) : ''}`); },
  }));
  await mta.start();
  /** The envelopes of one message, handed over together as the queue does. */
  async function deliverAll(envelopes: Envelope[], path = bodyPath): Promise<MtaResult[]> {
    const inline = await readFile(path);
    const { results } = await bus.request('queue', 'queue.delivery.mta', { envelopes, body: { msgid: envelopes[0]!.msgid, size: inline.length, inline } });
    return results;
  }
  return {
    deliver: async (e, path = bodyPath) => {
      const r = (await deliverAll([e], path))[0]!;
      if (r.result === 'hold') throw new Error(`held for ${r.holdq}`);
      return r;
    },
    deliverAll,
    counted,
    released,
    bodyPath,
    async stop() {
      await mta.stop();
      await lka.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function stub<R extends RoleName>(name: R, peers: RoleName[], handlers: Partial<Handlers<R>>): Role<R> {
  return { name, peers, handlers: handlers as Handlers<R>, start: async () => {}, stop: async () => {} };
}
