/**
 * Sandbox benchmarks (`npm run bench -- sandbox`), baselines measured in this run:
 *
 *  - policy_p99: one grant-policy evaluation (action Authorize, the tags the
 *    grant authorizer sends) through the policy hook — host checks, the
 *    process's inbox, a piscina thread, a fresh QuickJS runtime, the
 *    sanitised result — paced at the authorizer's default global grant rate
 *    (200/s, one every 5 ms), p99 over 2,000 (<= 5 ms); baseline: the same
 *    policy module imported into this process and called as a plain function
 *    (no isolation, no limits). The back-to-back latency (no pause between
 *    evaluations) is printed as information;
 *  - policy_rate: evaluations per second through the hook with 16 requests
 *    in flight (>= 200/s: the authorizer's default global grant rate, so the
 *    policy is never what limits it); baseline: the plain function's rate.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { normalize } from '../../sandbox/message.js';
import { PolicyGate } from '../../sandbox/policy.js';
import type { AuthorizeInput } from '../../sandbox/policy.js';
import { tempDir } from '../helpers/test.js';
import { describe as summary, gc, runSuite, sleep, summarize } from './harness.js';

const NODE = 'did:key:z6MkbenchNode';
const SAMPLES = 2000;
/** The grant authorizer's default global rate: requests arrive at most this often. */
const PACE_MS = 5;
const WARMUP = 500;
const RATE_MS = 3000;
const IN_FLIGHT = 16;

/** A realistic operator policy: a deny list, an allowed port range, office hours from the message clock. */
const POLICY = `
const DENY = new Set(['did:key:z6MkDenied1', 'did:key:z6MkDenied2']);
export function handle(msg) {
  if (msg.Action !== 'Authorize') return { allow: false, reason: 'unexpected action' };
  if (DENY.has(msg.Subscriber)) return { allow: false, reason: 'subscriber is on the deny list' };
  const port = Number(msg.Port);
  if (port < 1024 && msg.Service !== 'ssh') return { allow: false, reason: 'privileged port' };
  const hour = new Date().getUTCHours();
  if (msg.Service === 'backup' && (hour < 1 || hour > 5)) return { allow: false, reason: 'backups only at night' };
  return { allow: true, reason: 'ok' };
}
`;

const input = (i: number): AuthorizeInput => ({
  subscriber: `did:key:z6MkSubscriber${i % 97}`,
  service: i % 5 === 0 ? 'backup' : 'web',
  subscription: (i * 7919).toString(16).padStart(64, '0'),
  sourceIp: `10.0.${(i >> 8) & 255}.${i & 255}`,
  port: 8443,
  proto: 'tcp',
});

await runSuite('sandbox', async (r) => {
  const dir = tempDir('meshnode-bench-sandbox-');
  const file = join(dir, 'policy.js');
  writeFileSync(file, POLICY);

  // The baseline: the same module, in this process, as a plain function of the same message.
  const mod = (await import(pathToFileURL(file).href)) as {
    handle: (msg: unknown) => { allow: boolean; reason: string };
  };
  const plain = (i: number, now: number) =>
    mod.handle(
      normalize(
        {
          Id: `b${i}`,
          From: NODE,
          Timestamp: now,
          Tags: [
            { name: 'Action', value: 'Authorize' },
            { name: 'Subscriber', value: input(i).subscriber },
            { name: 'Service', value: input(i).service },
            { name: 'Port', value: String(input(i).port) },
          ],
        },
        'policy',
      ),
    );
  const plainLat: number[] = [];
  for (let i = 0; i < SAMPLES + WARMUP; i++) {
    const t = performance.now();
    plain(i, Date.now());
    if (i >= WARMUP) plainLat.push(performance.now() - t);
  }
  let plainCount = 0;
  const plainEnd = performance.now() + RATE_MS;
  while (performance.now() < plainEnd) plain(plainCount++, Date.now());
  const plainRate = plainCount / (RATE_MS / 1000);

  const gate = await PolicyGate.start(NODE, {
    policies: [{ name: 'policy', module: file }],
    threads: 1,
  });
  try {
    const check = (v: { allow: boolean; reason: string }) => {
      if (!v.allow && !/deny list|privileged|night/.test(v.reason)) {
        throw new Error(`the policy failed: ${v.reason}`);
      }
    };
    for (let i = 0; i < WARMUP; i++) check(await gate.authorize(input(i)));
    gc();
    await sleep(100);
    const backToBack: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const t = performance.now();
      check(await gate.authorize(input(i)));
      backToBack.push(performance.now() - t);
    }
    const lat: number[] = [];
    const start = performance.now();
    for (let i = 0; i < SAMPLES; i++) {
      const wait = start + i * PACE_MS - performance.now();
      if (wait > 0) await sleep(wait);
      const t = performance.now();
      check(await gate.authorize(input(i)));
      lat.push(performance.now() - t);
    }
    const pool = summarize(lat);
    const base = summarize(plainLat);
    r.info('policy_latency', `through the pool, one every ${PACE_MS} ms: ${summary(pool, 'ms')}`);
    r.info('back_to_back', `through the pool, no pause: ${summary(summarize(backToBack), 'ms')}`);
    r.info('plain_latency', `in-process function: ${summary(base, 'ms')}`);
    r.figure({
      name: 'policy_p99',
      value: pool.p99,
      unit: 'ms',
      baseline: base.p99,
      op: '<=',
      target: 5,
      on: 'value',
    });

    let done = 0;
    const end = performance.now() + RATE_MS;
    const started = performance.now();
    const lane = async (k: number) => {
      for (let i = k; performance.now() < end; i += IN_FLIGHT) {
        check(await gate.authorize(input(i)));
        done++;
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, (_, k) => lane(k)));
    const rate = done / ((performance.now() - started) / 1000);
    r.figure({
      name: 'policy_rate',
      value: rate,
      unit: 'eval/s',
      baseline: plainRate,
      op: '>=',
      target: 200,
      on: 'value',
    });
    r.info('errors', JSON.stringify(gate.sandbox?.stats()));
  } finally {
    await gate.close();
  }
});
