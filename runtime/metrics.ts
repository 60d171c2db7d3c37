/**
 * The metrics an actor reports into. It lives in the actor's own thread and
 * is read over the control plane (`stats()`); the supervisor turns the
 * snapshots into Prometheus exposition with prom-client on the main thread.
 * Keeping the in-thread side to plain numbers makes recording cost a few
 * nanoseconds on the message hot path, and keeps prom-client (and its
 * label hashing) off the worker threads.
 */
import type { LatencySnapshot } from './types.js';

/**
 * Histogram bounds: powers of two from 1 µs to ~33 s. Coarse (a bucket is a
 * factor of 2 wide) but allocation-free to record into, and good enough for
 * an operator's p99 column and a Prometheus histogram.
 */
const BOUNDS_US: readonly number[] = Array.from({ length: 26 }, (_, i) => 2 ** i);

export class LatencyHistogram {
  private readonly counts = new Float64Array(BOUNDS_US.length + 1);
  private total = 0;
  private sum = 0;
  private max = 0;

  /** Record one duration in microseconds. */
  record(us: number): void {
    // Index of the first bound >= us: ceil(log2(us)), clamped.
    const i = us <= 1 ? 0 : Math.min(BOUNDS_US.length, Math.ceil(Math.log2(us)));
    this.counts[i]! += 1;
    this.total += 1;
    this.sum += us;
    if (us > this.max) this.max = us;
  }

  snapshot(): LatencySnapshot {
    return {
      count: this.total,
      sumUs: this.sum,
      p50Us: this.quantile(0.5),
      p99Us: this.quantile(0.99),
      maxUs: this.max,
      boundsUs: [...BOUNDS_US],
      counts: Array.from(this.counts),
    };
  }

  /** Upper bound of the bucket holding quantile q (0 when empty). */
  private quantile(q: number): number {
    if (this.total === 0) return 0;
    const rank = Math.ceil(q * this.total);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return i < BOUNDS_US.length ? Math.min(BOUNDS_US[i]!, this.max) : this.max;
    }
    return this.max;
  }
}

/** Named counters and gauges an actor keeps for its own domain. */
export class MetricsRegistry {
  private readonly values = new Map<string, number>();

  counter(name: string): { inc(by?: number): void } {
    checkName(name);
    if (!this.values.has(name)) this.values.set(name, 0);
    return { inc: (by = 1) => this.values.set(name, (this.values.get(name) ?? 0) + by) };
  }

  gauge(name: string): { set(value: number): void } {
    checkName(name);
    if (!this.values.has(name)) this.values.set(name, 0);
    return { set: (value: number) => this.values.set(name, value) };
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries(this.values);
  }
}

/** Prometheus metric names: keep them valid here so exposition never fails later. */
function checkName(name: string): void {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) {
    throw new TypeError(`metric name ${JSON.stringify(name)} must match ^[a-z_][a-z0-9_]*$`);
  }
}
