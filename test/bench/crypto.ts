/**
 * Ed25519 throughput on one core: the hot path (runtime/crypto/ed25519.ts)
 * against @noble/curves, and the cost of the pinned pre-checks. Not a suite
 * of its own: the journal suite calls `benchCrypto(reporter)`; run alone it
 * prints under suite `journal` (`node dist/test/bench/crypto.js`).
 *
 *   verify           verify(sig, msg, pub): pre-checks + node:crypto with the
 *                    cached public KeyObject, vs noble's ed25519.verify
 *                    ({ zip215: false }). ops/s, target: ratio >= 1.
 *   sign             sign(keyPair, msg) (libsodium where the addon loads), vs
 *                    noble's ed25519.sign(msg, seed). ops/s, target >= 1.
 *   sign_vs_node_crypto  the same vs node:crypto with the KeyPair's KeyObject:
 *                    why the journal signs with libsodium. ops/s, target >= 1.
 *   verify_precheck  verify(...) vs bare node:crypto verify with the same
 *                    cached KeyObject (no pre-checks, no cache lookup): what
 *                    the rule costs. ops/s, target: ratio >= 0.9.
 *
 * Every measurement alternates hot path and baseline in rounds and reports
 * the median round, so drift hits both alike. Messages are 256 bytes (about a
 * journal entry), signed by 32 keys (many entries, few authors).
 * MESHNODE_BENCH_SCALE (default 1) multiplies iteration counts.
 */
import { verify as nodeVerify } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { ed25519 } from '@noble/curves/ed25519.js';
import {
  generateKeyPair,
  precheck,
  publicKeyObject,
  sign,
  signingBackend,
  verify,
} from '../../runtime/crypto/ed25519.js';
import type { KeyPair } from '../../runtime/crypto/ed25519.js';
import { createReporter, gc, median, runSuite } from './harness.js';
import type { Reporter } from './harness.js';

const SCALE = Number(process.env.MESHNODE_BENCH_SCALE ?? 1);
const scaled = (n: number) => Math.max(1, Math.round(n * SCALE));

const KEYS = 32;
const MSG_BYTES = 256;
/** Hot path vs noble: rounds, and operations per round (node:crypto is ~15x faster, so it gets more). */
const ROUNDS = 7;
const FAST_PER_ROUND = scaled(4000);
const SLOW_PER_ROUND = scaled(300);
/**
 * Hot path vs bare node:crypto: the two differ by well under 1%, so short
 * alternating blocks, many of them, keep load from other processes from
 * landing on one side only.
 */
const PAIR_ROUNDS = 41;
const PAIR_PER_ROUND = scaled(250);

interface Sample {
  keyPair: KeyPair;
  seed: Uint8Array;
  msg: Uint8Array;
  sig: Uint8Array;
}

function samples(): Sample[] {
  const out: Sample[] = [];
  for (let i = 0; i < KEYS; i++) {
    const keyPair = generateKeyPair();
    const msg = new Uint8Array(MSG_BYTES).map((_, j) => (i * 31 + j) & 0xff);
    out.push({ keyPair, seed: keyPair.exportSeed(), msg, sig: sign(keyPair, msg) });
  }
  return out;
}

/** ops/s of `op` run `n` times over the samples. */
function opsPerSecond(n: number, data: Sample[], op: (s: Sample) => boolean | Uint8Array): number {
  let sink = 0;
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const r = op(data[i % data.length]!);
    if (r === true || (r instanceof Uint8Array && r.length === 64)) sink++;
  }
  const ms = performance.now() - start;
  if (sink !== n) throw new Error(`benchmark operation failed (${n - sink} of ${n})`);
  return (n / ms) * 1000;
}

/** Median ops/s of `a` and `b`, alternating per round. */
function compare(
  a: { n: number; op: (s: Sample) => boolean | Uint8Array },
  b: { n: number; op: (s: Sample) => boolean | Uint8Array },
  data: Sample[],
  rounds = ROUNDS,
): { a: number; b: number } {
  // Warm-up: JIT, the KeyObject cache, noble's precomputed base-point tables.
  opsPerSecond(Math.ceil(a.n / 10), data, a.op);
  opsPerSecond(Math.ceil(b.n / 10), data, b.op);
  const ra: number[] = [];
  const rb: number[] = [];
  for (let r = 0; r < rounds; r++) {
    if (rounds <= ROUNDS) gc();
    if (r % 2 === 0) {
      ra.push(opsPerSecond(a.n, data, a.op));
      rb.push(opsPerSecond(b.n, data, b.op));
    } else {
      rb.push(opsPerSecond(b.n, data, b.op));
      ra.push(opsPerSecond(a.n, data, a.op));
    }
  }
  return { a: median(ra), b: median(rb) };
}

/** Print the crypto figures through `reporter` (or a `journal` reporter of its own). */
export async function benchCrypto(reporter?: Reporter): Promise<void> {
  const r = reporter ?? createReporter('journal');
  const data = samples();

  const hotVerify = (s: Sample) => verify(s.sig, s.msg, s.keyPair.publicKey);
  const v = compare(
    { n: FAST_PER_ROUND, op: hotVerify },
    {
      n: SLOW_PER_ROUND,
      op: (s) => ed25519.verify(s.sig, s.msg, s.keyPair.publicKey, { zip215: false }),
    },
    data,
  );
  r.figure({
    name: 'verify',
    value: v.a,
    unit: 'ops/s',
    baseline: v.b,
    op: '>=',
    target: 1,
    on: 'ratio',
  });

  const g = compare(
    { n: FAST_PER_ROUND, op: (s) => sign(s.keyPair, s.msg) },
    { n: SLOW_PER_ROUND, op: (s) => ed25519.sign(s.msg, s.seed) },
    data,
  );
  r.figure({
    name: 'sign',
    value: g.a,
    unit: 'ops/s',
    baseline: g.b,
    op: '>=',
    target: 1,
    on: 'ratio',
  });

  // The signer the journal uses (libsodium where it loads) vs node:crypto with the same KeyObject.
  const n2 = compare(
    { n: FAST_PER_ROUND, op: (s) => sign(s.keyPair, s.msg) },
    { n: FAST_PER_ROUND, op: (s) => sign(s.keyPair.privateKey, s.msg) },
    data,
  );
  r.figure({
    name: 'sign_vs_node_crypto',
    value: n2.a,
    unit: 'ops/s',
    baseline: n2.b,
    op: '>=',
    target: 1,
    on: 'ratio',
  });
  r.info('sign_backend', `sign(keyPair) uses ${signingBackend()}`);

  // Bare node:crypto with the KeyObjects already built: no pre-checks, no cache lookup.
  const keyObjects = new Map(data.map((s) => [s, publicKeyObject(s.keyPair.publicKey)]));
  gc();
  const p = compare(
    { n: PAIR_PER_ROUND, op: hotVerify },
    { n: PAIR_PER_ROUND, op: (s) => nodeVerify(null, s.msg, keyObjects.get(s)!, s.sig) },
    data,
    PAIR_ROUNDS,
  );
  r.figure({
    name: 'verify_precheck',
    value: p.a,
    unit: 'ops/s',
    baseline: p.b,
    op: '>=',
    target: 0.9,
    on: 'ratio',
  });
  // The rule's own cost, measured directly: pre-checks + KeyObject cache lookup per call.
  const n = scaled(200_000);
  let ok = 0;
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const s = data[i % data.length]!;
    if (precheck(s.sig, s.keyPair.publicKey) && publicKeyObject(s.keyPair.publicKey)) ok++;
  }
  const ns = ((performance.now() - start) * 1e6) / n;
  if (ok !== n) throw new Error('pre-check rejected a valid signature');
  r.info(
    'verify_precheck_cost',
    `${ns.toFixed(0)} ns per verify for pre-checks + key cache lookup, vs ${(1e6 / p.b).toFixed(1)} µs for node:crypto verify`,
  );
  r.info(
    'crypto',
    `${KEYS} keys, ${MSG_BYTES}-byte messages, median of ${ROUNDS} rounds, one core`,
  );
  if (reporter === undefined && r.failures > 0) process.exitCode = 1;
}

// Run alone: node dist/test/bench/crypto.js
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runSuite('journal', (rep) => benchCrypto(rep));
}
