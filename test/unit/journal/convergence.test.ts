/**
 * The convergence contract of the mesh directory (docs/design.md §9), as a
 * property: generated histories — a founding, invites (some over the
 * inviter's rights, some for another mesh), joins, expulsions (some by
 * members without the right, some of the founder), offers, subscriptions,
 * approvals, revocations and node records, by members, outsiders and
 * expelled authors who keep writing (some past the evidence window a cut
 * keeps, CUT_EVIDENCE) — are delivered to fresh journals in
 * random orders, the way gossip delivers them: each feed in order from the
 * journal's head, never past a cut the journal knows, interleaved across
 * feeds at random, in random batches, until no journal can take more. Every
 * order must end with byte-identical heads, views and membership.
 *
 * At least 200 histories in CI (MESHNODE_LONG=1 runs 10x); the seed is
 * printed and MESHNODE_SEED replays it.
 */
import { rmSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { RIGHTS } from '../../../runtime/domain/entries.js';
import { CUT_EVIDENCE } from '../../../runtime/domain/membership.js';
import type { EntryKind } from '../../../runtime/domain/entries.js';
import { VIEWS } from '../../../runtime/domain/views.js';
import { JournalStore } from '../../../actors/journal/store.js';
import { planBatch } from '../../../actors/journal/feed.js';
import { Feed, T0, checked, fakeId, idOf, keyOf } from '../../helpers/journal.js';
import { describe } from '../../helpers/test.js';
import { LONG, rng, seedOf } from '../../reliability/report.js';
import type { Rng } from '../../reliability/report.js';

const test = describe('journal/convergence', 120_000);

const HISTORIES = LONG ? 2000 : 200;
/** Orders each history is delivered in. */
const ORDERS = 3;
/** A delivery that has not settled after this many batches oscillates: a convergence bug. */
const MAX_BATCHES = 5000;
const SERVICES = ['web', 'ssh', 'db'];
/**
 * A random seed each run unless MESHNODE_SEED names one (the seed is
 * printed). Seed 1878336233 was the open defect of the time-ordered rule
 * (an expulsion whose effect depended on an act of the expelled feed above
 * its own cut: truncating and re-fetching alternated forever); seeds 2 and
 * 3 found, on the way to the rule of today, concurrent mutual expulsions
 * that a journal stopping a feed exactly at its cut could never judge
 * (hence the evidence window). Their shapes are fixed cases: the
 * three-way cycle and the mutual expulsion in test/unit/runtime/
 * membership.test.ts, a counter-expulsion past the window below.
 */
const seed = seedOf();
console.log(`convergence: seed ${seed} (MESHNODE_SEED=${seed} replays it), ${HISTORIES} histories`);

interface History {
  feeds: Feed[];
  mesh: string;
}

/** A history as a busy mesh writes it: the generator tracks only what an author could know. */
function generate(r: Rng, n: number): History {
  const feeds = Array.from({ length: 3 + r.int(5) }, (_, i) => new Feed(keyOf(1000 + n * 16 + i)));
  const founder = feeds[0]!;
  let clock = T0;
  // Ties in ts are common: the membership order breaks them by entry id.
  const tick = () => (clock += r.int(3));
  const admission = r() < 0.8 ? 'closed' : 'open';
  const mesh = idOf(founder.push('mesh', { name: 'm', admission, createdAt: T0 }, tick()));
  const subs: string[] = [];
  const steps = 15 + r.int(35);
  for (let s = 0; s < steps; s++) {
    const roll = r();
    // Membership acts come from the founder half the time, so many of them count.
    const a = roll < 0.4 && r() < 0.5 ? founder : r.pick(feeds);
    const other = r.pick(feeds);
    let kind: EntryKind;
    let body: Record<string, unknown>;
    if (roll < 0.22) {
      kind = 'member';
      const rights = RIGHTS.filter(() => r() < 0.6);
      body = {
        mesh: r() < 0.95 ? mesh : fakeId(r.int(1000)),
        did: other.did,
        rights,
        invite: fakeId(1 + r.int(1 << 30)),
      };
    } else if (roll < 0.4) {
      kind = 'member-revoke';
      // The expeller's view of the target's head: anything up to what it wrote so far.
      body = { mesh, did: other.did, cut: r.int(other.seq + 1) };
    } else if (roll < 0.5) {
      kind = 'offer';
      body = {
        service: r.pick(SERVICES),
        port: 1 + r.int(65535),
        proto: 'tcp',
        mode: r() < 0.5 ? 'auto' : 'manual',
        leaseSeconds: 60,
      };
    } else if (roll < 0.65) {
      kind = 'subscribe';
      body = { provider: other.did, service: r.pick(SERVICES) };
    } else if (roll < 0.75 && subs.length > 0) {
      kind = 'approve';
      body = { subscription: r.pick(subs) };
    } else if (roll < 0.85 && a.seq > 0) {
      kind = 'revoke';
      body = { target: a.idAt(1 + r.int(a.seq)) };
    } else {
      kind = 'node';
      body = {
        name: `n${feeds.indexOf(a)}x${r.int(3)}`,
        gossip: `wss://10.0.0.${feeds.indexOf(a) + 1}:7946/gossip`,
        meshIp: `10.0.0.${feeds.indexOf(a) + 1}`,
      };
    }
    const e = a.push(kind, body, tick());
    if (kind === 'subscribe') subs.push(idOf(e));
    // Now and then an author writes on at length: past the evidence window a
    // cut keeps, so journals must truncate what they hold beyond it.
    if (r() < 0.06) {
      for (let k = CUT_EVIDENCE + r.int(20); k > 0; k--)
        a.push(
          'node',
          { name: `b${k}`, gossip: 'wss://10.0.0.9:7946/gossip', meshIp: '10.0.0.9' },
          tick(),
        );
    }
  }
  return { feeds, mesh };
}

/**
 * Deliver whole feeds in a fixed priority (each as far as the journal takes
 * it, the first before the next), pass after pass until nothing more is
 * taken: the adversarial orders a random interleaving rarely makes.
 */
async function deliverFeedsInOrder(h: History, order: Feed[], dir: string): Promise<string> {
  const store = await JournalStore.open(dir);
  try {
    await store.setMeshId(h.mesh);
    for (let pass = 0; pass < 50; pass++) {
      let took = 0;
      for (const f of order) {
        const head = store.head(f.did)?.seq ?? 0;
        const end = Math.min(f.seq, store.keptThrough(f.did) ?? Infinity);
        if (head >= end) continue;
        const plan = planBatch(f.entries.slice(head, end).map(checked), store);
        await store.commit(plan.appends);
        took += plan.appends.length;
        await store.truncateOverCut();
      }
      if (took === 0) break;
    }
    const views: Record<string, unknown> = {};
    for (const v of VIEWS) views[v] = store.viewAll(v, 100_000);
    const heads = Object.entries(store.versionVector()).sort(([a], [b]) => (a < b ? -1 : 1));
    return JSON.stringify({ heads, views, membership: store.membership().data });
  } finally {
    await store.close();
  }
}

/** Deliver every feed to a fresh journal in one random order; answer what it ends with. */
async function deliver(
  h: History,
  r: Rng,
  dir: string,
): Promise<{ dump: string; truncated: number; inert: number }> {
  const store = await JournalStore.open(dir);
  let truncated = 0;
  try {
    await store.setMeshId(h.mesh);
    for (let batches = 0; ; batches++) {
      assert.ok(batches < MAX_BATCHES, 'delivery never settles: the cuts oscillate');
      // What gossip would still pull: from our head, up to the feed's end or its cut.
      const open = h.feeds.filter((f) => {
        const head = store.head(f.did)?.seq ?? 0;
        return head < Math.min(f.seq, store.keptThrough(f.did) ?? Infinity);
      });
      if (open.length === 0) break;
      const chosen = open.filter(() => r() < 0.5);
      const take = chosen.length > 0 ? chosen : [r.pick(open)];
      const queues = take.map((f) => {
        const head = store.head(f.did)?.seq ?? 0;
        const end = Math.min(f.seq, head + 1 + r.int(4));
        return f.entries.slice(head, end);
      });
      // Interleave the feeds at random, each in its own order.
      const batch = [];
      while (queues.some((q) => q.length > 0)) {
        const q = r.pick(queues.filter((x) => x.length > 0));
        batch.push(checked(q.shift()!));
      }
      const plan = planBatch(batch, store);
      await store.commit(plan.appends);
      for (const t of await store.truncateOverCut()) truncated += t.removed;
    }
    const membership = store.membership();
    for (const c of membership.data.cuts) {
      assert.ok(
        (store.head(c.did)?.seq ?? 0) <= c.seq + CUT_EVIDENCE,
        'a cut feed is held past its evidence window',
      );
    }
    const views: Record<string, unknown> = {};
    for (const v of VIEWS) views[v] = store.viewAll(v, 100_000);
    const heads = Object.entries(store.versionVector()).sort(([a], [b]) => (a < b ? -1 : 1));
    let inert = 0;
    for (const f of h.feeds) if (!membership.counts(f.did) && store.head(f.did)) inert++;
    return {
      dump: JSON.stringify({ heads, views, membership: membership.data }),
      truncated,
      inert,
    };
  } finally {
    await store.close();
  }
}

test(`${HISTORIES} generated histories, ${ORDERS} delivery orders each: identical heads, views and membership`, async () => {
  const root = mkdtempSync(join('/dev/shm', 'meshnode-convergence-'));
  const r = rng(seed);
  let withCuts = 0;
  let withTruncation = 0;
  let withInert = 0;
  let withMembers = 0;
  try {
    for (let n = 0; n < HISTORIES; n++) {
      const h = generate(r, n);
      const results = [];
      for (let o = 0; o < ORDERS; o++) {
        results.push(await deliver(h, rng(seed ^ (n * 7919 + o)), join(root, `${n}-${o}`)));
        rmSync(join(root, `${n}-${o}`), { recursive: true, force: true });
      }
      for (let o = 1; o < ORDERS; o++) {
        if (results[o]!.dump !== results[0]!.dump) {
          assert.unreachable(
            `history ${n} (seed ${seed}): order ${o} ended differently from order 0\n` +
              `${results[0]!.dump.slice(0, 2000)}\n---\n${results[o]!.dump.slice(0, 2000)}`,
          );
        }
      }
      const data = JSON.parse(results[0]!.dump) as {
        membership: { cuts: unknown[]; members: unknown[] };
      };
      if (data.membership.cuts.length > 0) withCuts++;
      if (data.membership.members.length > 1) withMembers++;
      if (results.some((x) => x.truncated > 0)) withTruncation++;
      if (results[0]!.inert > 0) withInert++;
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  console.log(
    `convergence: ${withMembers} histories with invited members, ${withCuts} with expulsions, ${withTruncation} where a journal truncated a feed it held past a cut, ${withInert} with inert outsiders`,
  );
  // The property is only as good as the histories: each interesting case must occur.
  assert.ok(withMembers > HISTORIES / 4, 'too few histories with invited members');
  assert.ok(withCuts > HISTORIES / 10, 'too few histories with expulsions');
  assert.ok(withTruncation > 0, 'no delivery order ever truncated a feed');
  assert.ok(withInert > HISTORIES / 10, 'too few histories with inert outsiders');
});

test('a counter-expulsion written past the evidence window is judged alike whichever feed arrived first', async () => {
  const [founder, u, p] = [new Feed(keyOf(901)), new Feed(keyOf(902)), new Feed(keyOf(903))];
  const mesh = idOf(founder.push('mesh', { name: 'm', admission: 'closed', createdAt: T0 }, T0));
  const all = [...RIGHTS];
  founder.push('member', { mesh, did: u.did, rights: all, invite: fakeId(1) }, T0 + 1);
  founder.push('member', { mesh, did: p.did, rights: all, invite: fakeId(2) }, T0 + 2);
  const record = (n: number) => ({
    name: `x${n}`,
    gossip: 'wss://10.0.0.7:7946/gossip',
    meshIp: '10.0.0.7',
  });
  u.push('node', record(1), T0 + 3);
  p.push('node', record(2), T0 + 3);
  // u expels p having seen p's first entry; p, unaware, writes on past the window and expels u.
  u.push('member-revoke', { mesh, did: p.did, cut: 1 }, T0 + 10);
  for (let i = 0; i < CUT_EVIDENCE + 6; i++) p.push('node', record(100 + i), T0 + 4);
  p.push('member-revoke', { mesh, did: u.did, cut: 1 }, T0 + 11);
  const h = { feeds: [founder, u, p], mesh };
  const root = mkdtempSync(join('/dev/shm', 'meshnode-convergence-'));
  try {
    const pFirst = await deliverFeedsInOrder(h, [founder, p, u], join(root, 'p'));
    const uFirst = await deliverFeedsInOrder(h, [founder, u, p], join(root, 'u'));
    assert.is(pFirst, uFirst);
    const m = (JSON.parse(uFirst) as { membership: { cuts: Array<{ did: string }> } }).membership;
    assert.equal(
      m.cuts.map((c) => c.did),
      [p.did],
      "u's expulsion stands: p's act was not concurrent with it",
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
