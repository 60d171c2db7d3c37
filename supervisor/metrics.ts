/**
 * Prometheus exposition (prom-client) of what the actors report. Actors keep
 * plain counters in their own threads (runtime/metrics.ts); on each scrape
 * the supervisor gathers every running actor's stats over the control plane
 * and sets prom-client's metrics from them. Counters are cumulative per
 * actor instance; `restarts_total` tells a scraper when one began anew.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import type { ActorStats } from '../runtime/types.js';
import type { Supervisor } from './supervisor.js';

/** A scrape must not hang on a stuck actor: its stats are skipped after this. */
const STATS_TIMEOUT_MS = 500;

export function createMetricsRegistry(sup: Supervisor): Registry {
  const registry = new Registry();
  let snapshot: Promise<Map<string, ActorStats>> | null = null;
  // One gather per scrape, shared by every metric's collect().
  const gather = () =>
    (snapshot ??= (async () => {
      const out = new Map<string, ActorStats>();
      await Promise.all(
        sup.info().map(async (c) => {
          if (c.state !== 'running') return;
          try {
            out.set(c.name, await sup.stats(c.name, STATS_TIMEOUT_MS));
          } catch {
            // A stuck or exiting actor shows up as up=0 instead.
          }
        }),
      );
      setImmediate(() => (snapshot = null));
      return out;
    })());

  // One per-actor series per metric, set from the scrape's snapshot. Counters
  // are re-based each scrape (reset + inc): the source of truth is the actor.
  const perActor = (
    kind: 'counter' | 'gauge',
    name: string,
    help: string,
    pick: (s: ActorStats) => number,
  ) => {
    const Metric = kind === 'counter' ? Counter : Gauge;
    return new Metric({
      name,
      help,
      labelNames: ['actor'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const [actor, s] of await gather()) {
          if (this instanceof Counter) this.inc({ actor }, pick(s));
          else (this as Gauge).set({ actor }, pick(s));
        }
      },
    });
  };
  const counter = perActor.bind(null, 'counter');
  const gauge = perActor.bind(null, 'gauge');

  counter('meshnode_actor_received_total', 'Messages received by the actor', (s) => s.received);
  counter('meshnode_actor_handled_total', 'Messages handled by the actor', (s) => s.handled);
  counter(
    'meshnode_actor_rejected_total',
    'Messages refused (trust, mailbox, stopping)',
    (s) => s.rejected,
  );
  counter('meshnode_actor_dead_letters_total', 'Messages with nowhere to go', (s) => s.deadLetters);
  gauge('meshnode_actor_mailbox_depth', 'Queued plus running messages', (s) => s.depth);
  gauge(
    'meshnode_actor_handler_latency_p99_seconds',
    'Handler latency p99',
    (s) => s.latency.p99Us / 1e6,
  );
  // The handler latency histogram, from the actors' own buckets (powers of
  // two, µs): prom-client cannot be fed precomputed buckets, so this one
  // metric is a hand-made collector in prom-client's exposition format.
  const histogram = 'meshnode_actor_handler_latency_seconds';
  registry.registerMetric({
    name: histogram,
    help: 'Handler latency (buckets are powers of two of microseconds)',
    type: 'histogram',
    aggregator: 'sum',
    reset() {},
    async get() {
      const values: Array<{
        metricName: string;
        labels: Record<string, string | number>;
        value: number;
      }> = [];
      for (const [actor, s] of await gather()) {
        let cumulative = 0;
        s.latency.boundsUs.forEach((bound, i) => {
          cumulative += s.latency.counts[i] ?? 0;
          values.push({
            metricName: `${histogram}_bucket`,
            labels: { actor, le: bound / 1e6 },
            value: cumulative,
          });
        });
        values.push({
          metricName: `${histogram}_bucket`,
          labels: { actor, le: '+Inf' },
          value: s.latency.count,
        });
        values.push({
          metricName: `${histogram}_sum`,
          labels: { actor },
          value: s.latency.sumUs / 1e6,
        });
        values.push({
          metricName: `${histogram}_count`,
          labels: { actor },
          value: s.latency.count,
        });
      }
      return {
        name: histogram,
        help: 'Handler latency (buckets are powers of two of microseconds)',
        type: 'histogram',
        aggregator: 'sum',
        values,
      };
    },
  } as never);
  gauge('meshnode_actor_heap_used_bytes', 'V8 heap used by the actor thread', (s) => s.heapUsed);
  // The actors' own metrics (journal_appends_total, …), one series per name.
  new Gauge({
    name: 'meshnode_actor_metric',
    help: "An actor's own metric, by name (from its MetricsRegistry)",
    labelNames: ['actor', 'metric'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const [actor, s] of await gather()) {
        for (const [metric, value] of Object.entries(s.metrics)) this.set({ actor, metric }, value);
      }
    },
  });
  new Gauge({
    name: 'meshnode_actor_up',
    help: '1 when the actor is running',
    labelNames: ['actor'],
    registers: [registry],
    collect() {
      for (const c of sup.info()) this.set({ actor: c.name }, c.state === 'running' ? 1 : 0);
    },
  });
  new Counter({
    name: 'meshnode_actor_restarts_total',
    help: 'Restarts of the actor since the node started',
    labelNames: ['actor'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of sup.info()) this.inc({ actor: c.name }, c.restarts);
    },
  });
  return registry;
}

/** Serve the registry at /metrics on `listen` (host:port). Resolves with the bound server. */
export function serveMetrics(registry: Registry, listen: string): Promise<Server> {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(i + 1));
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500).end(err.message),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
