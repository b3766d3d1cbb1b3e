/**
 * Each process watches its own event loop and reports its stalls to the stat role, so that
 * `tsmtpctl show stats` shows every process's event-loop delay (a long synchronous step anywhere
 * delays every session or delivery that process serves).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Bus } from '../bus/bus.js';
import type { RoleName } from '../bus/messages.js';

/**
 * The monitor samples the loop with a timer of this period: a stall of at least this long is always
 * seen, a shorter one only when a sample falls in it. At 10 ms, every process woke 100 times a
 * second, idle or not, about one wake-up per process per message in a single session.
 */
const SAMPLE_MS = 100;

/** How often a process reports (the first time sooner, so a fresh daemon has figures). */
const LOOP_REPORT_MS = 10_000;
const LOOP_FIRST_REPORT_MS = 1000;

/** The longest and the 99th-percentile stall of this process's event loop, in ms, as gauges. */
export function reportLoopDelay(b: Bus, from: RoleName, processName: string): void {
  const h = monitorEventLoopDelay({ resolution: SAMPLE_MS });
  h.enable();
  // the histogram holds the time between two samples (Node's ELDHistogram records the whole
  // interval): the stall is what exceeds the period
  const stall = (ns: number) => Math.max(0, Math.round(ns / 1e6 - SAMPLE_MS));
  const report = () => {
    b.notify(from, 'stat.set', { key: 'process.loop.delay.max', labels: { process: processName }, value: stall(h.max) });
    b.notify(from, 'stat.set', { key: 'process.loop.delay.p99', labels: { process: processName }, value: stall(h.percentile(99)) });
    h.reset();
  };
  setTimeout(report, LOOP_FIRST_REPORT_MS).unref();
  setInterval(report, LOOP_REPORT_MS).unref();
}
