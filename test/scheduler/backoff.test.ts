/** Retry and delay-notice times: OpenSMTPD's quadratic schedule, always in the future, each warning once. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { nextTry, nextWarn, retryBase } from '../../src/scheduler/backoff.js';

const C = 1_780_000_000;

test('bases: 400 s for remote deliveries, 10 s for local ones and bounces', () => {
  assert.equal(retryBase('mta'), 400);
  assert.equal(retryBase('mda'), 10);
  assert.equal(retryBase('bounce'), 10);
});

test('the schedule is createdAt + base * step², skipping steps already past', () => {
  assert.equal(nextTry('mta', C, 0, C), C + 400);
  assert.equal(nextTry('mta', C, 1, C), C + 400);
  assert.equal(nextTry('mta', C, 2, C + 400), C + 1600);
  assert.equal(nextTry('mta', C, 3, C + 1600), C + 3600);
  assert.equal(nextTry('mda', C, 5, C), C + 250);
  // a try that ran late: the next time is the first one strictly after now
  assert.equal(nextTry('mta', C, 1, C + 400), C + 1600);
  assert.equal(nextTry('mta', C, 1, C + 5000), C + 6400);
});

test('property: the next try is the first quadratic step at or past `tries` that is after now', () => {
  fc.assert(
    fc.property(fc.constantFrom('mta' as const, 'mda' as const, 'bounce' as const), fc.nat(200), fc.nat(10 * 86400), (kind, tries, late) => {
      const now = C + late;
      const at = nextTry(kind, C, tries, now);
      const base = retryBase(kind);
      const step = Math.sqrt((at - C) / base);
      assert.ok(at > now);
      assert.ok(Number.isInteger(step) && step >= Math.max(1, tries));
      // the step before it was not usable: already past, or below the try count
      const prev = step - 1;
      assert.ok(prev < Math.max(1, tries) || C + base * prev * prev <= now);
    }),
    { numRuns: 2000 },
  );
});

test('warnings: none before a failure, each interval once, none past the last', () => {
  const hours = [3600, 4 * 3600];
  assert.equal(nextWarn(C, 0, 0, hours), Infinity);
  assert.equal(nextWarn(C, 0, 1, hours), C + 3600);
  assert.equal(nextWarn(C, C + 3600, 2, hours), C + 4 * 3600);
  // a warning sent late still counts for the intervals it passed
  assert.equal(nextWarn(C, C + 5 * 3600, 3, hours), Infinity);
  assert.equal(nextWarn(C, 0, 1, []), Infinity);
});
