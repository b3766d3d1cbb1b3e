/**
 * What every database table backend (postgres, mysql, redis) must do, against the machine's
 * servers: the shared conformance content; a server that goes away or hangs fails lookups as
 * tempfail (never "not found") within the time limit and is used again once back; a server down
 * at start is not fatal; `update` reloads the config file and keeps the old one when the new one
 * is broken.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from '../harness/net.js';
import { TcpProxy } from '../harness/databases.js';
import { openTable } from '../../src/table/table.js';
import { TableError } from '../../src/table/types.js';
import { conformance } from './conformance.js';
import { tempDir } from './helpers.js';

export interface DatabaseFixture {
  backend: 'postgres' | 'mysql' | 'redis';
  /** The real server's port. */
  port: number;
  /** Stores the entries under fresh names; the config file text for a server on `port`. */
  create(entries: [string, string][]): Promise<{ conf(port: number): string; drop(): Promise<void> }>;
}

export const tempfail = (e: unknown) => e instanceof TableError && e.tempfail;
const TIMEOUT = 1500;

export function databaseTableSuite(fx: DatabaseFixture, skip: string | false): void {
  const drops: (() => Promise<void>)[] = [];
  after(() => Promise.all(drops.map((d) => d())));
  async function store(t: Parameters<typeof tempDir>[0], entries: [string, string][]) {
    const dir = await tempDir(t);
    const s = await fx.create(entries);
    drops.push(s.drop);
    const path = join(dir, `${fx.backend}.conf`);
    const open = async (port: number) => {
      await writeFile(path, s.conf(port));
      const table = await openTable({ name: 't', backend: fx.backend, config: path }, { timeoutMs: TIMEOUT });
      t.after(() => table.close());
      return table;
    };
    return { path, conf: s.conf, open };
  }

  if (!skip) {
    conformance(fx.backend, async (dir, entries) => {
      const s = await fx.create(entries);
      drops.push(s.drop);
      const path = join(dir, `${fx.backend}.conf`);
      await writeFile(path, s.conf(fx.port));
      return openTable({ name: 't', backend: fx.backend, config: path }, { timeoutMs: TIMEOUT });
    });
  }

  test(`${fx.backend}: a server that goes away fails lookups as tempfail, and is used again once back`, { skip }, async (t) => {
    const proxy = await new TcpProxy(fx.port).start();
    t.after(() => proxy.cut());
    const { open } = await store(t, [['example.org', 'ok']]);
    const table = await open(proxy.port);
    assert.equal(await table.match('domain', 'example.org'), true);
    await proxy.cut();
    await assert.rejects(table.match('domain', 'example.org'), tempfail);
    await assert.rejects(table.match('domain', 'other.org'), tempfail, 'a miss is not answered either');
    await proxy.restore();
    // the client reconnects on its own (redis after a short backoff)
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = await table.match('domain', 'example.org').catch((e: unknown) => e);
      if (r === true) break;
      assert.ok(tempfail(r), `only tempfail while reconnecting, got ${String(r)}`);
      assert.ok(Date.now() < deadline, 'reconnected');
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(await table.match('domain', 'other.org'), false);
  });

  test(`${fx.backend}: a server that hangs fails the lookup as tempfail within the time limit`, { skip }, async (t) => {
    const proxy = await new TcpProxy(fx.port).start();
    t.after(() => proxy.cut());
    const { open } = await store(t, [['example.org', 'ok']]);
    const table = await open(proxy.port);
    assert.equal(await table.match('domain', 'example.org'), true);
    proxy.stall();
    const started = Date.now();
    await assert.rejects(table.match('domain', 'example.org'), tempfail);
    // the limit, the one retry on a fresh connection, and slack for a loaded machine
    assert.ok(Date.now() - started < 4 * TIMEOUT + 3000, `answered after ${Date.now() - started} ms`);
  });

  test(`${fx.backend}: down at start is no error; update reloads the config, and a broken one keeps the old`, { skip }, async (t) => {
    const closed = await freePort();
    const { path, conf, open } = await store(t, [['example.org', 'ok']]);
    const table = await open(closed);
    await assert.rejects(table.match('domain', 'example.org'), tempfail);
    await assert.rejects(table.update(), tempfail, 'an update that cannot connect fails');
    await writeFile(path, conf(fx.port));
    await table.update();
    assert.equal(await table.match('domain', 'example.org'), true);
    await writeFile(path, conf(closed));
    await assert.rejects(table.update(), TableError);
    await writeFile(path, conf(fx.port) + conf(fx.port));
    await assert.rejects(table.update(), /duplicate key/);
    assert.equal(await table.match('domain', 'example.org'), true, 'the old config still serves');
  });
}
