/**
 * Equivocation across the mesh: an author (a test key) signs two different
 * entries at one seq and each reaches a different end of a five-node chain.
 * Wherever the two branches meet, the journal keeps both signed entries as
 * the proof and stops the feed; gossip spreads the proof, so every node ends
 * with it and refuses the author's entries (ERR_EQUIVOCATION) — also the
 * nodes that only ever held one branch. The relays that carried the
 * branches are not banned: other feeds keep flowing.
 */
import * as assert from 'uvu/assert';
import type { Entry } from '../../../runtime/domain/codec.js';
import { Feed, append, bodies, idOf, ingest, keyOf } from '../../helpers/journal.js';
import type { GossipStatus, TestMesh } from '../../helpers/mesh.js';
import { waitFor, withMesh } from '../../helpers/mesh.js';
import { describe, rejectsWith } from '../../helpers/test.js';

const test = describe('gossip/equivocation', 60_000);

interface Proof {
  author: string;
  seq: number;
  entries: [Entry, Entry];
}

const proofsOf = (mesh: TestMesh, i: number) =>
  mesh.sup(i).ask('journal', 'proofs') as Promise<Proof[]>;

/**
 * Wait until every node holds exactly one proof for `author` — two different
 * entries of that author at one seq, within the forked range `seqs` (where two
 * branches meet decides at which forked seq a node sees them differ) — and
 * its gossip lists the feed as frozen. Returns how long the wait took.
 */
async function waitProofEverywhere(
  mesh: TestMesh,
  author: string,
  seqs: [number, number],
  deadlineMs: number,
): Promise<number> {
  const t0 = Date.now();
  const has = async (i: number) => (await proofsOf(mesh, i)).some((p) => p.author === author);
  await waitFor(
    async () => (await Promise.all(mesh.nodes.map((n) => has(n.index)))).every(Boolean),
    deadlineMs,
    `a proof for the author on every node`,
    async () =>
      (await Promise.all(mesh.nodes.map(async (n) => `node ${n.index}: ${await has(n.index)}`)))
        .join(', ')
        .concat(` (${await mesh.describeHeads()})`),
  );
  const ms = Date.now() - t0;
  for (const n of mesh.nodes) {
    const proofs = (await proofsOf(mesh, n.index)).filter((p) => p.author === author);
    assert.is(proofs.length, 1, `node ${n.index}: one proof for the author`);
    const [a, b] = proofs[0]!.entries;
    assert.is(a.author, author);
    assert.is(b.author, author);
    const seq = proofs[0]!.seq;
    assert.ok(seq >= seqs[0] && seq <= seqs[1], `node ${n.index}: proof at seq ${seq}`);
    assert.is(a.seq, seq);
    assert.is(b.seq, seq);
    assert.is.not(idOf(a), idOf(b), `node ${n.index}: the proof is two different entries`);
    const st = (await n.sup!.ask('journal', 'status')) as { equivocations: number };
    assert.is(st.equivocations, 1, `node ${n.index}: journal status counts it`);
    await waitFor(
      async () => ((await mesh.status(n.index)) as GossipStatus).frozen.includes(author),
      5000,
      `node ${n.index}'s gossip marking the feed frozen`,
    );
  }
  return ms;
}

/** Every node refuses each of `entries` (any branch, any seq) with ERR_EQUIVOCATION. */
async function assertFrozen(mesh: TestMesh, entries: Entry[]): Promise<void> {
  for (const n of mesh.nodes) {
    for (const e of entries) {
      await rejectsWith(ingest(n.sup!, [e]), 'ERR_EQUIVOCATION');
    }
  }
}

/** The relays are not banned: an append at one end still reaches the other. */
async function assertStillGossiping(mesh: TestMesh, tag: string): Promise<void> {
  for (const n of mesh.nodes) {
    assert.equal((await mesh.status(n.index)).bans, [], `node ${n.index} banned nobody`);
  }
  const ack = await append(mesh.sup(0), tag, 'offer', bodies.offer(tag, 8443));
  await waitFor(
    async () => ((await mesh.heads(4))[ack.author] ?? 0) >= ack.seq,
    10_000,
    'an append on node 0 reaching node 4 after the freeze',
  );
}

test('two entries at one seq ingested at both ends of a chain of 5: every node keeps the proof and freezes the feed', async () => {
  await withMesh({ n: 5, topology: 'chain' }, async (mesh) => {
    await mesh.waitReady(30_000);
    const key = keyOf(41);
    const left = new Feed(key);
    const right = new Feed(key);
    const e1 = left.push('offer', bodies.offer('left', 80));
    const e2 = right.push('offer', bodies.offer('right', 81));
    assert.is(e1.seq, e2.seq);
    assert.is.not(idOf(e1), idOf(e2));
    await Promise.all([ingest(mesh.sup(0), [e1]), ingest(mesh.sup(4), [e2])]);
    const ms = await waitProofEverywhere(mesh, key.did, [1, 1], 30_000);
    console.log(`# equal-length fork: proof on all 5 nodes in ${ms} ms`);
    // Both branches' continuations, and either seq-1 entry, are refused everywhere.
    const more = [left.push('offer', bodies.offer('left', 82)), right.push('node', bodies.node(3))];
    await assertFrozen(mesh, [e1, e2, ...more]);
    await assertStillGossiping(mesh, 'after_fork');
  });
}, 120_000);

test('branches of different lengths after a common prefix: the fork is found and the proof reaches every node', async () => {
  await withMesh({ n: 5, topology: 'chain' }, async (mesh) => {
    await mesh.waitReady(30_000);
    const key = keyOf(42);
    const trunk = new Feed(key);
    trunk.fill(3);
    // The common prefix everywhere first.
    await ingest(mesh.sup(2), trunk.entries);
    await mesh.waitConverged(20_000);
    // Then two branches from seq 4: five entries on one end, two on the other.
    const left = new Feed(key);
    const right = new Feed(key);
    for (const e of trunk.entries) {
      left.push(e.kind, e.body as Record<string, unknown>, e.ts);
      right.push(e.kind, e.body as Record<string, unknown>, e.ts);
    }
    assert.equal(left.ids, trunk.ids, 'the branches share the prefix');
    for (let k = 0; k < 5; k++) left.push('offer', bodies.offer(`left_${k}`, 100 + k));
    for (let k = 0; k < 2; k++) right.push('offer', bodies.offer(`right_${k}`, 200 + k));
    await Promise.all([
      ingest(mesh.sup(0), left.entries.slice(3)),
      ingest(mesh.sup(4), right.entries.slice(3)),
    ]);
    const ms = await waitProofEverywhere(mesh, key.did, [4, 5], 30_000);
    console.log(`# fork after a common prefix: proof on all 5 nodes in ${ms} ms`);
    await assertFrozen(mesh, [left.push('offer', bodies.offer('left_x', 300))]);
    await assertStillGossiping(mesh, 'after_branches');
  });
}, 120_000);

test.run();
