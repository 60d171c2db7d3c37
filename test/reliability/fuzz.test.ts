/**
 * Fuzzing (issue 9): mutated inputs, a bounded count under `npm test` and
 * 20x as many with MESHNODE_LONG=1, seeded (the seed is printed;
 * MESHNODE_SEED=N replays it). For each target: no crash, no hang (every
 * input answered, the slowest one timed), and every refusal a coded error.
 *  - gossip frames: decodeFrame on mutated valid frames of every type, as
 *    text and as bytes — a frame or a MeshError ERR_BAD_FRAME;
 *  - admin API: mutated request lines to a real node's admin socket —
 *    every non-blank line gets exactly one answer, ok or an ERR_* code
 *    (never ERR_HANDLER, an uncoded throw inside a handler), and the node
 *    still serves at the end;
 *  - config: mutated TOML through loadConfig, mutated data through
 *    parseConfig — a Config or a MeshError ERR_INVALID_CONFIG;
 *  - grant requests: decide() on mutated requests (half of them re-signed so
 *    the later checks are reached) — a decision with an ERR_GRANT_* code, or
 *    an allow only for a request that is valid.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { decodeFrame } from '../../actors/gossip/frames.js';
import { decide, meshBlocks } from '../../actors/grants/checks.js';
import type { GrantLookup } from '../../actors/grants/checks.js';
import type { GrantRequest } from '../../runtime/protocol/grants.js';
import { sigToString } from '../../runtime/domain/codec.js';
import { grantRequestBytes, sign } from '../../runtime/crypto/index.js';
import { loadConfig, parseConfig } from '../../supervisor/config.js';
import { Feed, bodies, fakeId, keyOf } from '../helpers/journal.js';
import { RawAdmin, ROOT, startNode } from '../helpers/meshnode.js';
import { describe, tempDir, until } from '../helpers/test.js';
import { mutateText, mutateValue } from './mutate.js';
import { LONG, report, rng, seedOf } from './report.js';
import type { Rng } from './report.js';

const SCALE = LONG ? 20 : 1;
const test = describe('reliability/fuzz', (LONG ? 1200 : 90) * 1000);
const seed = seedOf();
console.log(`fuzz: seed ${seed} (MESHNODE_SEED=${seed} replays it), scale ${SCALE}`);

const CODE = /^ERR_[A-Z0-9_]+$/;

interface Tally {
  inputs: number;
  accepted: number;
  codes: Map<string, number>;
  slowestMs: number;
  failures: string[];
}

const tally = (): Tally => ({
  inputs: 0,
  accepted: 0,
  codes: new Map(),
  slowestMs: 0,
  failures: [],
});

function note(t: Tally, code: string): void {
  t.codes.set(code, (t.codes.get(code) ?? 0) + 1);
}

function finish(name: string, t: Tally, extra: Record<string, string | number> = {}): void {
  const top = [...t.codes.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)
    .map(([c, n]) => `${c}:${n}`)
    .join(' ');
  report({
    suite: `fuzz ${name}`,
    iterations: t.inputs,
    failures: t.failures.length,
    worstRecoveryMs: null,
    figures: {
      seed,
      accepted: t.accepted,
      'slowest input ms': Number(t.slowestMs.toFixed(1)),
      codes: top || '-',
      ...extra,
    },
  });
  assert.equal(t.failures.slice(0, 5), [], `${name}: ${t.failures.length} failures (seed ${seed})`);
}

/** A sync call under the stopwatch; returns the error it threw, if any. */
function timed(t: Tally, fn: () => unknown): unknown {
  const t0 = performance.now();
  try {
    fn();
    return undefined;
  } catch (err) {
    return err ?? new Error('threw a falsy value');
  } finally {
    t.slowestMs = Math.max(t.slowestMs, performance.now() - t0);
  }
}

// --- gossip frames --------------------------------------------------------------------------

function frameCorpus(): unknown[] {
  const a = new Feed(keyOf(1));
  const b = keyOf(2).did;
  a.fill(3);
  const id = a.idAt(3);
  const n43 = 'A'.repeat(43);
  const sig = 'B'.repeat(86);
  return [
    { t: 'hello', versions: [3], did: a.did, nonce: n43 },
    { t: 'auth', version: 3, sig },
    { t: 'vv', heads: { [a.did]: 3, [b]: 0 }, more: false, ids: { [a.did]: id } },
    { t: 'have', heads: { [a.did]: 3 } },
    { t: 'want', author: a.did, from: 1, to: 3 },
    { t: 'entries', author: a.did, from: 1, entries: a.entries },
    { t: 'proof', author: a.did, seq: 1, entries: [a.at(1), a.at(2)] },
    { t: 'grantHello', rid: 'r1' },
    { t: 'grantNonce', rid: 'r1', nonce: n43, expiresAt: 1 },
    { t: 'grantReq', rid: 'r1', did: b, service: 'web', subscription: id, nonce: n43, sig },
    {
      t: 'grantRes',
      rid: 'r1',
      ok: true,
      endpoint: { ip: '10.0.0.1', port: 80, proto: 'tcp' },
      expires: 5,
      grant: id,
    },
  ];
}

test('gossip frame decoder: every mutated frame decodes or is ERR_BAD_FRAME / ERR_TOO_DEEP', () => {
  const r = rng(seed ^ 0x1);
  const t = tally();
  const corpus = frameCorpus();
  for (const f of corpus) decodeFrame(JSON.stringify(f), false, 500); // the corpus is valid
  const count = 5000 * SCALE;
  for (let i = 0; i < count; i++) {
    const base = r.pick(corpus);
    const text = r.int(2)
      ? JSON.stringify(mutateValue(r, base))
      : mutateText(r, JSON.stringify(base));
    const asBytes = r.int(4) === 0;
    const binary = r.int(50) === 0;
    t.inputs++;
    const err = timed(t, () =>
      decodeFrame(asBytes ? Buffer.from(text, 'utf8') : text, binary, 1 + r.int(500)),
    );
    if (err === undefined) t.accepted++;
    else {
      const code = (err as { code?: unknown }).code;
      note(t, String(code));
      // Deep nesting is refused before parsing, with its own code (both charge the peer).
      if (code !== 'ERR_BAD_FRAME' && code !== 'ERR_TOO_DEEP')
        t.failures.push(
          `#${i}: ${String(code)} ${(err as Error).message} for ${text.slice(0, 200)}`,
        );
    }
  }
  finish('frames', t);
});

// --- config ---------------------------------------------------------------------------------

test('config: every mutated TOML file and data loads or is ERR_INVALID_CONFIG', () => {
  const r = rng(seed ^ 0x2);
  const t = tally();
  const dir = tempDir('meshnode-fuzz-config-');
  const file = join(dir, 'meshnode.toml');
  const example = readFileSync(join(ROOT, 'deploy', 'meshnode.toml.example'), 'utf8');
  const base = loadConfig(join(ROOT, 'deploy', 'meshnode.toml.example'), {});
  const count = 1500 * SCALE;
  for (let i = 0; i < count; i++) {
    t.inputs++;
    let err: unknown;
    let what: string;
    if (r.int(2)) {
      what = mutateText(r, example);
      writeFileSync(file, what);
      err = timed(t, () => loadConfig(file, {}));
    } else {
      const data = mutateValue(r, base);
      what = JSON.stringify(data)?.slice(0, 300) ?? String(data);
      err = timed(t, () => parseConfig(data));
    }
    if (err === undefined) t.accepted++;
    else {
      const code = (err as { code?: unknown }).code;
      note(t, String(code));
      // loadConfig's own errors are ERR_INVALID_CONFIG, the schema's (naming the field) ERR_INVALID_OPTION.
      if (code !== 'ERR_INVALID_CONFIG' && code !== 'ERR_INVALID_OPTION')
        t.failures.push(
          `#${i}: ${String(code)} ${(err as Error).message} for ${what.slice(0, 300)}`,
        );
    }
  }
  finish('config', t);
});

// --- grant requests -------------------------------------------------------------------------

const GRANT_CODES = new Set([
  'ERR_GRANT_NONCE',
  'ERR_GRANT_SIGNATURE',
  'ERR_GRANT_DID',
  'ERR_GRANT_SUBSCRIPTION',
  'ERR_GRANT_OFFER',
  'ERR_GRANT_NOT_APPROVED',
  'ERR_GRANT_REVOKED',
  'ERR_GRANT_RATE',
  'ERR_GRANT_POLICY',
  'ERR_GRANT_SOURCE_IP',
]);

test('grant requests: decide() on mutated requests answers with a grant code, never throws', async () => {
  const r = rng(seed ^ 0x3);
  const t = tally();
  const provider = keyOf(10);
  const consumer = keyOf(11);
  const SUB = fakeId(7);
  const NONCE = 'N'.repeat(43);
  const lookup: GrantLookup = {
    me: provider.did,
    subscription: async (id) =>
      id === SUB ? { subscriber: consumer.did, provider: provider.did, service: 'web' } : undefined,
    offer: async (service) =>
      service === 'web'
        ? { id: fakeId(8), service, port: 80, proto: 'tcp', mode: 'auto', leaseSeconds: 60 }
        : undefined,
    revoked: async () => false,
    grantRevoked: async () => false,
    approval: async () => undefined,
    counts: async () => true,
    recordIps: async () => undefined,
  };
  const gates = {
    nonce: (n: string, peer: string) => n === NONCE && peer === consumer.did,
    rate: () => r.int(10) !== 0,
    policy: async () => {
      const x = r.int(10);
      if (x === 0) throw new Error('policy crashed');
      return x === 1
        ? ({ allow: 'yes' } as unknown as { allow: boolean; reason: string })
        : { allow: true, reason: 'ok' };
    },
  };
  const mesh = meshBlocks(['10.0.0.0/8', 'fd00::/8']);
  const fields = { did: consumer.did, service: 'web', subscription: SUB, nonce: NONCE };
  const valid: GrantRequest = {
    ...fields,
    sig: sigToString(sign(consumer, grantRequestBytes(fields))),
  };
  const ok = await decide(
    valid,
    { peerDid: consumer.did, sourceIp: '10.1.2.3' },
    lookup,
    { ...gates, rate: () => true, policy: async () => ({ allow: true, reason: 'ok' }) },
    mesh,
  );
  assert.ok(ok.allow, 'the unmutated request is allowed');
  // Regressions found by this fuzzer: a lone surrogate (which JSON frames can carry) made the
  // signature check throw, and a non-object request threw instead of being denied.
  const lone = await decide(
    { ...valid, service: '\ud800' },
    { peerDid: consumer.did, sourceIp: '10.1.2.3' },
    lookup,
    gates,
    mesh,
  );
  assert.equal(lone.allow ? 'allowed' : lone.code, 'ERR_GRANT_SIGNATURE');
  const notObject = await decide(
    null as unknown as GrantRequest,
    { peerDid: consumer.did, sourceIp: '10.1.2.3' },
    lookup,
    gates,
    mesh,
  );
  assert.equal(notObject.allow ? 'allowed' : notObject.code, 'ERR_GRANT_NONCE');
  const count = 3000 * SCALE;
  const resign = (req: unknown, key: Rng): unknown => {
    if (!req || typeof req !== 'object' || key.int(2) === 0) return req;
    const q = req as Record<string, unknown>;
    try {
      const k = key.int(4) === 0 ? keyOf(12) : consumer;
      return { ...q, sig: sigToString(sign(k, grantRequestBytes(q as unknown as GrantRequest))) };
    } catch {
      return req; // fields that cannot be signed stay as they are
    }
  };
  for (let i = 0; i < count; i++) {
    const req = resign(mutateValue(r, valid), r);
    const seen = {
      peerDid: r.int(8) === 0 ? keyOf(12).did : consumer.did,
      sourceIp: r.pick([
        '10.1.2.3',
        'fd00::5',
        '192.168.1.1',
        '::ffff:10.0.0.1',
        'x',
        '',
        '10.0.0.1%eth0',
      ]),
    };
    t.inputs++;
    const t0 = performance.now();
    try {
      const d = await decide(req as GrantRequest, seen, lookup, gates, mesh);
      if (d.allow) {
        t.accepted++;
        // Allowed only what is really valid: our subscription, its DID on the link, a mesh source.
        const q = req as GrantRequest;
        if (
          q.did !== consumer.did ||
          q.subscription !== SUB ||
          q.service !== 'web' ||
          seen.peerDid !== consumer.did ||
          !['10.1.2.3', 'fd00::5', '::ffff:10.0.0.1'].includes(seen.sourceIp)
        )
          t.failures.push(
            `#${i}: allowed ${JSON.stringify(req).slice(0, 300)} from ${JSON.stringify(seen)}`,
          );
      } else {
        note(t, d.code);
        if (!GRANT_CODES.has(d.code)) t.failures.push(`#${i}: code ${d.code}`);
      }
    } catch (err) {
      note(t, `throw:${(err as { code?: string }).code ?? 'none'}`);
      t.failures.push(
        `#${i}: threw ${(err as Error).message} for ${JSON.stringify(req)?.slice(0, 300)}`,
      );
    } finally {
      t.slowestMs = Math.max(t.slowestMs, performance.now() - t0);
    }
  }
  finish('grants', t);
});

// --- admin API ------------------------------------------------------------------------------

test(
  'admin API: every mutated request line gets one answer, ok or coded; the node keeps serving',
  async () => {
    const r = rng(seed ^ 0x4);
    const t = tally();
    const node = await startNode();
    try {
      const admin = await RawAdmin.connect(node.socket);
      // Regressions found by this fuzzer: Object.prototype's names reached the forward table
      // (ERR_HANDLER "forward is not iterable"), and journal.tail handed any params to the journal.
      for (const method of ['toString', 'constructor', 'hasOwnProperty', 'valueOf']) {
        const a = await admin.request(method);
        assert.is(a.error?.code, 'ERR_BAD_REQUEST', method);
      }
      for (const params of [{ limit: { a: 1 } }, { after: -1 }, { limit: 1e9 }, { x: 1 }]) {
        const a = await admin.request('journal.tail', params);
        assert.is(a.error?.code, 'ERR_BAD_REQUEST', JSON.stringify(params));
      }
      const did = keyOf(3).did;
      // Never the destructive methods: a mutation must not stop the node under test by asking nicely.
      const corpus = [
        { v: 1, id: 1, method: 'status' },
        { v: 1, id: 'a', method: 'actors' },
        { v: 1, id: 2, method: 'inspect', params: { actor: 'gossip' } },
        {
          v: 1,
          id: 3,
          method: 'offer',
          params: { service: 'web', port: 80, proto: 'tcp', mode: 'auto', leaseSeconds: 60 },
        },
        { v: 1, id: 4, method: 'subscribe', params: { provider: did, service: 'web' } },
        { v: 1, id: 5, method: 'approve', params: { subscription: fakeId(1) } },
        { v: 1, id: 6, method: 'grants', params: {} },
        { v: 1, id: 7, method: 'peers' },
        { v: 1, id: 8, method: 'journal.tail', params: { limit: 5 } },
        { v: 1, id: 9, method: 'journal.heads' },
        { v: 1, id: 10, method: 'journal.status', caller: { uid: 0 } },
        { v: 1, id: 11, method: 'nft.list' },
        { v: 1, id: 12, method: 'nft.status' },
        {
          v: 1,
          id: 13,
          method: 'nft.plan',
          params: {
            add: [{ proto: 'tcp', port: 80, ip: '10.0.0.1', leaseSeconds: 5 }],
            remove: [],
          },
        },
        { v: 1, id: 14, method: 'activate', params: { subscription: fakeId(2) } },
        { v: 1, id: 15, method: 'journal.tail', params: bodies.node(1) },
      ];
      const DESTRUCTIVE =
        /^(stop|kill|restart|logLevel|revoke|unban|journal\.forceSelfHead|nft\.reconcile|trace)$/;
      const count = 1500 * SCALE;
      const BATCH = 50;
      for (let i = 0; i < count; i += BATCH) {
        let sent = 0;
        const before = admin.answers.length;
        admin.answers.length = 0;
        assert.is(before, 0, 'no unexpected answers');
        for (let j = 0; j < BATCH; j++) {
          const base = r.pick(corpus);
          let line = r.int(2)
            ? JSON.stringify(mutateValue(r, base))
            : mutateText(r, JSON.stringify(base));
          line = (line ?? 'undefined').replace(/[\r\n]/g, ' ');
          if (Buffer.byteLength(line) > 1024 * 1024) line = line.slice(0, 1000);
          try {
            const m = (JSON.parse(line) as { method?: unknown })?.method;
            if (typeof m === 'string' && DESTRUCTIVE.test(m)) continue;
          } catch {
            /* not JSON: sent as is */
          }
          if (line.trim() === '') continue;
          admin.write(`${line}\n`);
          sent++;
          t.inputs++;
        }
        const t0 = performance.now();
        await until(
          () => admin.answers.length >= sent || admin.closed,
          30_000,
          `answers to batch ${i / BATCH} (seed ${seed})`,
        );
        t.slowestMs = Math.max(t.slowestMs, performance.now() - t0);
        assert.not.ok(admin.closed, 'the node kept the connection');
        assert.is(admin.answers.length, sent, 'one answer per line');
        for (const a of admin.answers) {
          if (a.ok) {
            t.accepted++;
            continue;
          }
          const code = a.error?.code ?? 'none';
          note(t, code);
          if (!CODE.test(code) || code === 'ERR_HANDLER')
            t.failures.push(`batch ${i / BATCH}: ${code} ${a.error?.message ?? ''}`);
        }
        admin.answers.length = 0;
      }
      const st = await admin.request('status');
      assert.ok(st.ok, 'the node still answers status');
      const actors = (st.result as { actors: Array<{ name: string; restarts: number }> }).actors;
      admin.close();
      finish('admin', t, { 'actor restarts': actors.reduce((s, a) => s + (a.restarts ?? 0), 0) });
    } finally {
      await node.stop();
    }
  },
  (LONG ? 900 : 60) * 1000,
);

test.run();
