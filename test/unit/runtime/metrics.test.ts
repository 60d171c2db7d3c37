import * as assert from 'uvu/assert';
import { LatencyHistogram, MetricsRegistry } from '../../../runtime/metrics.js';
import { describe } from '../../helpers/test.js';

const test = describe('runtime/metrics', 2000);

/** Index of the bucket whose upper bound is `bound` (µs). */
const bucketOf = (h: LatencyHistogram, bound: number): number =>
  h.snapshot().boundsUs.indexOf(bound);

test('bounds are powers of two from 1 µs, with one more +Inf bucket in counts', () => {
  const s = new LatencyHistogram().snapshot();
  assert.is(s.boundsUs.length, 26);
  assert.is(s.boundsUs[0], 1);
  assert.is(s.boundsUs[25], 2 ** 25);
  for (let i = 1; i < s.boundsUs.length; i++) assert.is(s.boundsUs[i], 2 * s.boundsUs[i - 1]!);
  assert.is(s.counts.length, s.boundsUs.length + 1);
});

test('an empty histogram reports zeros', () => {
  const s = new LatencyHistogram().snapshot();
  assert.is(s.count, 0);
  assert.is(s.p50Us, 0);
  assert.is(s.p99Us, 0);
  assert.is(s.maxUs, 0);
  assert.ok(s.counts.every((c) => c === 0));
});

test('a value lands in the first bucket whose bound is >= it', () => {
  const h = new LatencyHistogram();
  const cases: Array<[number, number]> = [
    [0, 1],
    [0.5, 1],
    [1, 1],
    [1.5, 2],
    [2, 2],
    [3, 4],
    [4, 4],
    [5, 8],
    [1024, 1024],
    [1025, 2048],
    [2 ** 25, 2 ** 25],
  ];
  for (const [us, bound] of cases) {
    const before = h.snapshot().counts[bucketOf(h, bound)]!;
    h.record(us);
    assert.is(h.snapshot().counts[bucketOf(h, bound)], before + 1, `${us} µs → ≤ ${bound} µs`);
  }
  assert.is(h.snapshot().count, cases.length);
});

test('values beyond the last bound go to the +Inf bucket', () => {
  const h = new LatencyHistogram();
  h.record(2 ** 25 + 1);
  h.record(1e12);
  const s = h.snapshot();
  assert.is(s.counts[26], 2);
  assert.is(s.maxUs, 1e12);
  assert.is(s.p99Us, 1e12, 'a quantile in the +Inf bucket reports the max');
});

test('p50 and p99 are the upper bound of the bucket holding the quantile, capped at the max', () => {
  const h = new LatencyHistogram();
  for (let us = 1; us <= 100; us++) h.record(us);
  const s = h.snapshot();
  assert.is(s.count, 100);
  // The 50th value (50 µs) lies in the (32, 64] bucket.
  assert.is(s.p50Us, 64);
  // The 99th value (99 µs) lies in (64, 128], capped at the max seen.
  assert.is(s.p99Us, 100);
  assert.is(s.maxUs, 100);
});

test('quantiles follow a skewed distribution: 98 fast, 2 slow', () => {
  const h = new LatencyHistogram();
  for (let i = 0; i < 98; i++) h.record(10);
  h.record(50_000);
  h.record(50_000);
  const s = h.snapshot();
  assert.is(s.p50Us, 16, '10 µs lies in (8, 16]');
  assert.is(s.p99Us, 50_000, 'the 99th of 100 is slow: bucket (32768, 65536], capped at the max');
  assert.is(s.maxUs, 50_000);
});

test('snapshot is a copy: recording afterwards does not change it', () => {
  const h = new LatencyHistogram();
  h.record(3);
  const s = h.snapshot();
  h.record(3);
  assert.is(s.count, 1);
  assert.is(s.counts[2], 1);
});

test('counters and gauges: inc defaults to 1, set replaces, snapshot is plain', () => {
  const m = new MetricsRegistry();
  const c = m.counter('entries_total');
  const g = m.gauge('peers');
  assert.equal(m.snapshot(), { entries_total: 0, peers: 0 });
  c.inc();
  c.inc(4);
  g.set(7);
  g.set(3);
  assert.equal(m.snapshot(), { entries_total: 5, peers: 3 });
  // Asking for the same counter again keeps its value.
  m.counter('entries_total').inc();
  assert.is(m.snapshot().entries_total, 6);
});

test('metric names must be valid Prometheus names', () => {
  const m = new MetricsRegistry();
  for (const good of ['a', '_x', 'abc_123', 'journal_entries_total']) {
    m.counter(good);
    m.gauge(`${good}_g`);
  }
  for (const bad of ['', '1abc', 'a-b', 'Upper', 'a.b', 'a b', 'é']) {
    assert.throws(() => m.counter(bad), TypeError, `counter ${JSON.stringify(bad)}`);
    assert.throws(() => m.gauge(bad), TypeError, `gauge ${JSON.stringify(bad)}`);
  }
  assert.not.ok('1abc' in m.snapshot());
});

test.run();
