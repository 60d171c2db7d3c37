/**
 * Prometheus exposition of what actors report: scraped over HTTP on loopback
 * from a running supervisor.
 */
import { spawnSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import * as assert from 'uvu/assert';
import { createMetricsRegistry, serveMetrics } from '../../../supervisor/metrics.js';
import { probe, withSupervisor } from '../../helpers/supervisor.js';
import { describe } from '../../helpers/test.js';

const test = describe('supervisor/metrics', 20_000);

const sample = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

test('a scrape shows per-actor counters, up, restarts and the actors’ own metrics', async () => {
  await withSupervisor({ children: [probe('a'), probe('b')] }, async (sup) => {
    for (let i = 0; i < 7; i++) await sup.ask('a', 'ping');
    const up = new Promise((resolve) => sup.once('child:up', resolve));
    sup.tell('b', 'crash', { kind: 'throw' });
    await up;
    const server = await serveMetrics(createMetricsRegistry(sup), '127.0.0.1:0', sup);
    try {
      const { port } = server.address() as AddressInfo;
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      assert.is(res.status, 200);
      const text = await res.text();
      assert.ok((sample(text, 'meshnode_actor_handled_total{actor="a"}') ?? 0) >= 7);
      assert.is(sample(text, 'meshnode_actor_up{actor="a"}'), 1);
      assert.is(sample(text, 'meshnode_actor_up{actor="b"}'), 1);
      assert.is(sample(text, 'meshnode_actor_restarts_total{actor="b"}'), 1);
      assert.is(sample(text, 'meshnode_actor_restarts_total{actor="a"}'), 0);
      // An actor's own counter is its own metric (it was a label of one gauge).
      assert.match(text, /# TYPE meshnode_probe_pings_total counter/);
      assert.is(sample(text, 'meshnode_probe_pings_total{actor="a"}'), 7);
      assert.match(text, /^meshnode_build_info\{version="\d+\.\d+\.\d+",node="[\d.]+"\} 1$/m);
      assert.match(text, /^process_resident_memory_bytes \d+/m, 'process metrics');
      assert.match(text, /^nodejs_eventloop_lag_seconds \d/m, 'nodejs metrics');
      assert.is(
        (await fetch(`http://127.0.0.1:${port}/metrics?x=1`)).status,
        200,
        'a query is ignored',
      );
      // promtool (Debian's prometheus package, installed by .ci/run) finds nothing to complain about.
      const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text });
      if (promtool.error && !process.env.CI) {
        console.log('# promtool not installed: the exposition check is skipped (CI installs it)');
      } else {
        assert.is(
          promtool.status,
          0,
          `promtool: ${String(promtool.stdout)}${String(promtool.stderr)}`,
        );
        assert.is(String(promtool.stdout).trim(), '', `promtool lint: ${String(promtool.stdout)}`);
      }
      // The handler latency histogram: cumulative buckets ending in +Inf = count.
      assert.match(text, /# TYPE meshnode_actor_handler_latency_seconds histogram/);
      const count = sample(text, 'meshnode_actor_handler_latency_seconds_count{actor="a"}') ?? 0;
      assert.ok(count >= 7, `count ${count}`);
      assert.is(
        sample(text, 'meshnode_actor_handler_latency_seconds_bucket{actor="a",le="+Inf"}'),
        count,
      );
      assert.ok((sample(text, 'meshnode_actor_handler_latency_seconds_sum{actor="a"}') ?? -1) >= 0);
      assert.is((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);
      assert.is((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      assert.is(ready.status, 200, await ready.text());
    } finally {
      server.close();
    }
  });
});

test('metrics bind where told: loopback by default in the node config', async () => {
  const { parseConfig } = await import('../../../supervisor/config.js');
  assert.match(parseConfig({}).metrics.listen, /^127\.0\.0\.1:/);
});

test.run();
