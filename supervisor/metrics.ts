/**
 * Prometheus exposition (prom-client) of what the actors report. Actors keep
 * plain counters in their own threads (runtime/metrics.ts); on each scrape
 * the supervisor gathers every running actor's stats over the control plane
 * and sets prom-client's metrics from them. Counters are cumulative per
 * actor instance; `restarts_total` tells a scraper when one began anew.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { PACKAGE_VERSION } from './config-values.js';
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
  // The actors' own metrics, each its own Prometheus metric (it was one gauge
  // with the name as a label): registered as each name is first seen.
  const registerOwn = ownMetrics(registry, gather);
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
  // The process (CPU, RSS, fds) and Node (heap, event loop lag, GC) of the main thread.
  collectDefaultMetrics({ register: registry });
  // prom-client names these three gauges `_total`, which promtool (rightly)
  // flags: a gauge is not a total. Dropped; nodejs_active_*_ by type remain.
  for (const name of [
    'nodejs_active_handles_total',
    'nodejs_active_requests_total',
    'nodejs_active_resources_total',
  ])
    registry.removeSingleMetric(name);
  new Gauge({
    name: 'meshnode_build_info',
    help: 'Always 1: the version of meshnode and of Node.js this node runs',
    labelNames: ['version', 'node'],
    registers: [registry],
  }).set({ version: PACKAGE_VERSION, node: process.versions.node }, 1);
  // Each scrape begins with the actors' snapshot, so the own-metric names are registered before the text is built.
  const metrics = registry.metrics.bind(registry);
  registry.metrics = async () => {
    await registerOwn();
    return metrics();
  };
  return registry;
}

/**
 * Serve on `listen` (host:port): /metrics (the registry), /healthz (200
 * while the node runs and is not stopping), /readyz (200 when every actor
 * runs, else 503 naming those that do not). A query string is ignored.
 */
export function serveMetrics(
  registry: Registry,
  listen: string,
  sup?: Supervisor,
): Promise<Server> {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(i + 1));
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/healthz' || path === '/readyz') {
      const { ok, body } = path === '/healthz' ? health(sup) : readiness(sup);
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' }).end(body);
      return;
    }
    if (path !== '/metrics') {
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

/** Live: the process answers and is not stopping. */
function health(sup?: Supervisor): { ok: boolean; body: string } {
  if (sup?.isStopping) return { ok: false, body: 'stopping\n' };
  return { ok: true, body: 'ok\n' };
}

/** Ready: every actor runs (one restarting, or given up on, is not ready). */
function readiness(sup?: Supervisor): { ok: boolean; body: string } {
  if (!sup) return { ok: true, body: 'ok\n' };
  if (sup.isStopping) return { ok: false, body: 'stopping\n' };
  const down = sup.info().filter((c) => c.state !== 'running');
  if (down.length === 0) return { ok: true, body: 'ok\n' };
  return {
    ok: false,
    body: `not running: ${down.map((c) => `${c.name} (${c.state})`).join(', ')}\n`,
  };
}

/** An actor's own metric name, in Prometheus' units: `_ms` becomes `_seconds` (value / 1000). */
export function promName(name: string): { name: string; scale: number } {
  const m = /^(.*)_ms(_total)?$/.exec(name);
  if (m) return { name: `meshnode_${m[1]}_seconds${m[2] ?? ''}`, scale: 1 / 1000 };
  return { name: `meshnode_${name}`, scale: 1 };
}

/**
 * Each actor metric as its own Prometheus metric with an `actor` label:
 * `_total` names are counters, the rest gauges. Names appear as actors
 * start; each is registered the first time a scrape sees it.
 */
function ownMetrics(
  registry: Registry,
  gather: () => Promise<Map<string, ActorStats>>,
): () => Promise<void> {
  const known = new Set<string>();
  const register = (raw: string) => {
    const { name, scale } = promName(raw);
    if (known.has(name) || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) return;
    known.add(name);
    const counter = name.endsWith('_total');
    const Metric = counter ? Counter : Gauge;
    new Metric({
      name,
      help: `The ${raw} metric each actor that has it reports`,
      labelNames: ['actor'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const [actor, s] of await gather()) {
          const v = s.metrics[raw];
          if (v === undefined) continue;
          if (this instanceof Counter) this.inc({ actor }, v * scale);
          else (this as Gauge).set({ actor }, v * scale);
        }
      },
    });
  };
  return async () => {
    for (const [, s] of await gather()) for (const raw of Object.keys(s.metrics)) register(raw);
  };
}
