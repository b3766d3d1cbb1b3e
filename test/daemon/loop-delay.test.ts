/**
 * The loop-delay gauges sample the loop every SAMPLE_MS instead of every 10 ms (a timer that woke
 * each process 100 times a second); a stall longer than the period must still be reported whole.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Bus } from '../../src/bus/bus.js';
import { reportLoopDelay } from '../../src/daemon/loop-delay.js';

describe('reportLoopDelay', () => {
  it('reports a 300 ms stall of the loop as its max', async () => {
    const sets: { key: string; value: number }[] = [];
    const bus = { notify: (_from: string, _type: string, req: { key: string; value: number }) => sets.push(req) } as unknown as Bus;
    reportLoopDelay(bus, 'lka', 'lka');
    await new Promise((r) => setTimeout(r, 200));
    const until = Date.now() + 300;
    while (Date.now() < until) { /* a synchronous step that holds the loop */ }
    // the first report comes a second after the start
    await new Promise((r) => setTimeout(r, 1200));
    const max = sets.find((s) => s.key === 'process.loop.delay.max');
    assert.ok(max, 'a max gauge was reported');
    assert.ok(max.value >= 200 && max.value < 400, `max ${max.value} ms for a 300 ms stall`);
  });

  it('reports an idle loop as no stall, not as the sampling period', async () => {
    const sets: { key: string; value: number }[] = [];
    const bus = { notify: (_from: string, _type: string, req: { key: string; value: number }) => sets.push(req) } as unknown as Bus;
    reportLoopDelay(bus, 'lka', 'lka');
    await new Promise((r) => setTimeout(r, 1200));
    const p99 = sets.find((s) => s.key === 'process.loop.delay.p99');
    assert.ok(p99, 'a p99 gauge was reported');
    assert.ok(p99.value < 100, `p99 ${p99.value} ms for a loop that only waited`);
  });
});
