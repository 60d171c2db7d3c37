/**
 * Restarts and restores between real nodes on loopback:
 *  - a node stopped in the middle of pulling a large set resumes from where
 *    its journal stopped, and pulls nothing twice;
 *  - a node restored from an old copy of its state directory (journal and
 *    key) refuses to append as itself (ERR_SELF_SYNC_PENDING) until it has
 *    learned its own feed's head from a peer, then goes on from that head:
 *    no fork, no equivocation anywhere;
 *  - ...and when the first peer to answer is stale, it waits for the others
 *    configured (within the grace period) and continues from the newest head;
 *  - the operator's `forceSelfHead` unlocks appends without a peer — and on
 *    a stale copy that forks the node's own feed, which the mesh then proves.
 */
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { JournalStore } from '../../../actors/journal/store.js';
import { Feed, append, bodies, ingest, journalDir, keyOf } from '../../helpers/journal.js';
import type { AppendAck, JournalStatus } from '../../helpers/journal.js';
import { TestMesh, freePort, gossipUrl, waitFor, withMesh } from '../../helpers/mesh.js';
import { describe, rejectsWith, tempDir } from '../../helpers/test.js';

const test = describe('gossip/restore', 60_000);

const journalStatus = (mesh: TestMesh, i: number) =>
  mesh.sup(i).ask('journal', 'status') as Promise<JournalStatus & { awaitingSelfHead: boolean }>;

const offer = (mesh: TestMesh, i: number, requestId: string): Promise<AppendAck> =>
  append(mesh.sup(i), requestId, 'offer', bodies.offer(requestId.replace(/\W/g, '_'), 7000));

/** Entries in a stopped node's journal, read from its LMDB directory. */
async function storedCount(dir: string): Promise<number> {
  const store = await JournalStore.open(journalDir(dir), { readOnly: true });
  try {
    return store.count();
  } finally {
    await store.close();
  }
}

/** Copy a node's journal and key into `backup`. */
function backUp(dir: string, backup: string): void {
  cpSync(journalDir(dir), journalDir(backup), { recursive: true });
  cpSync(join(dir, 'node.key'), join(backup, 'node.key'));
}

/** Replace a stopped node's journal and key with those of `backup`. */
function restoreFrom(backup: string, dir: string): void {
  rmSync(journalDir(dir), { recursive: true });
  rmSync(join(dir, 'node.key'));
  cpSync(backup, dir, { recursive: true });
}

/** No node holds an equivocation proof. */
async function assertNoProofs(mesh: TestMesh): Promise<void> {
  for (const n of mesh.running) {
    assert.equal(await mesh.sup(n.index).ask('journal', 'proofs'), [], `node ${n.index}: no proof`);
    assert.is((await journalStatus(mesh, n.index)).equivocations, 0);
    assert.equal((await mesh.status(n.index)).frozen, [], `node ${n.index}: nothing frozen`);
  }
}

test('a node stopped mid-sync resumes from its journal after a restart and pulls nothing twice', async () => {
  const AUTHORS = 20;
  const PER_AUTHOR = 200;
  const TOTAL = AUTHORS * PER_AUTHOR;
  // B pulls in small frames, one at a time, so the sync lasts long enough to stop it.
  const spec = {
    n: 2,
    gossipOf: (i: number) => (i === 1 ? { max_entries_per_frame: 10, max_wants_in_flight: 1 } : {}),
  };
  await withMesh(spec, async (mesh) => {
    await mesh.waitReady(20_000);
    const feeds = Array.from({ length: AUTHORS }, (_, k) => new Feed(keyOf(60 + k)));
    for (const f of feeds) await ingest(mesh.sup(0), f.fill(PER_AUTHOR));
    const expect = Object.fromEntries(feeds.map((f) => [f.did, PER_AUTHOR]));
    const t0 = Date.now();
    await waitFor(
      async () => (await journalStatus(mesh, 1)).entries >= TOTAL / 8,
      20_000,
      'B a good way into the sync',
    );
    await mesh.stopNode(1);
    const had = await storedCount(mesh.nodes[1]!.dir);
    assert.ok(had >= TOTAL / 8 && had < TOTAL, `B was stopped mid-sync (${had} of ${TOTAL})`);

    await mesh.startNode(1);
    const t1 = Date.now();
    await mesh.waitConverged(30_000, expect);
    const st = await mesh.status(1);
    console.log(
      `# restart mid-sync: ${had} of ${TOTAL} entries before the stop (${t1 - t0} ms in), ` +
        `the rest ${Date.now() - t1} ms after the restart`,
    );
    assert.ok(st.counters, 'gossip status has counters');
    assert.is(
      st.counters!.ingested,
      TOTAL - had,
      'the restarted node pulled exactly what it lacked',
    );
    assert.is(st.counters!.duplicates, 0, 'and nothing it already had');
    assert.is((await journalStatus(mesh, 1)).entries, TOTAL);
    const verify = (await mesh.sup(1).ask('journal', 'verify')) as { ok: boolean };
    assert.ok(verify.ok, JSON.stringify(verify));
  });
}, 90_000);

test('a node restored from an old copy of its state waits for its own head from a peer, then appends at seq 6: no fork', async () => {
  const backup = tempDir('meshnode-backup-');
  await withMesh({ n: 2 }, async (mesh) => {
    await mesh.waitReady(20_000);
    const a = mesh.nodes[0]!;
    await offer(mesh, 0, 'a1');
    await offer(mesh, 0, 'a2');
    await mesh.waitConverged(15_000, { [a.did]: 2 });
    // The backup: A's journal and key while A holds two entries of its own.
    backUp(a.dir, backup);
    const later = [
      await offer(mesh, 0, 'a3'),
      await offer(mesh, 0, 'a4'),
      await offer(mesh, 0, 'a5'),
    ];
    assert.equal(
      later.map((x) => x.seq),
      [3, 4, 5],
    );
    await mesh.waitConverged(15_000, { [a.did]: 5 });

    // A is lost and comes back from the backup; B is down at first, so A has
    // nobody to learn its head from.
    await mesh.stopNode(0);
    await mesh.stopNode(1);
    restoreFrom(backup, a.dir);
    await mesh.startNode(0, { peers: [mesh.url(1)] });
    assert.is(mesh.nodes[0]!.did, a.did, 'the restored node has its old key');
    assert.equal(await mesh.heads(0), { [a.did]: 2 }, 'and its old journal');
    assert.is((await journalStatus(mesh, 0)).awaitingSelfHead, true);
    await rejectsWith(offer(mesh, 0, 'a6'), 'ERR_SELF_SYNC_PENDING');
    assert.equal(await mesh.heads(0), { [a.did]: 2 }, 'the refused append wrote nothing');

    // B comes back: A learns seq 3..5 of its own feed, then appends after them.
    await mesh.startNode(1);
    await waitFor(async () => (await mesh.status(0)).selfSynced, 10_000, 'A self-synced');
    assert.equal(await mesh.heads(0), { [a.did]: 5 }, 'A pulled its own entries 3..5 first');
    const next = await offer(mesh, 0, 'a6');
    assert.is(next.seq, 6);
    assert.is(next.author, a.did);
    await mesh.waitConverged(15_000, { [a.did]: 6 });
    assert.equal(await mesh.heads(1), { [a.did]: 6 }, 'B took seq 6 on top of the same 1..5');
    for (const x of later) {
      const e = (await mesh.sup(0).ask('journal', 'get', { id: x.id })) as { seq: number } | null;
      assert.is(e?.seq, x.seq, `A holds its original entry ${x.seq}, not a new one`);
    }
    await assertNoProofs(mesh);
  });
}, 90_000);

test('a restored node hears every configured peer: a stale one answering first does not make it fork', async () => {
  const backup = tempDir('meshnode-backup-');
  // Every node dials every node started before it: C reaches A while B is down.
  const spec = { n: 3, topology: (i: number) => [...Array(i).keys()] };
  await withMesh(spec, async (mesh) => {
    await mesh.waitReady(20_000);
    const a = mesh.nodes[0]!;
    await offer(mesh, 0, 'r1');
    await offer(mesh, 0, 'r2');
    await mesh.waitConverged(15_000, { [a.did]: 2 });
    backUp(a.dir, backup);
    // B misses seq 3..5: it is down while A appends them; C takes them.
    await mesh.stopNode(1);
    for (const r of ['r3', 'r4', 'r5']) await offer(mesh, 0, r);
    await waitFor(async () => (await mesh.heads(2))[a.did] === 5, 10_000, 'C holding 1..5');

    // A comes back from the backup (seq 2) with B (stale, seq 2) up and C down.
    await mesh.stopNode(0);
    await mesh.stopNode(2);
    restoreFrom(backup, a.dir);
    await mesh.startNode(1, { peers: [] });
    await mesh.startNode(0, { peers: [mesh.url(1), mesh.url(2)] });
    const b = mesh.nodes[1]!;
    await waitFor(async () => (await mesh.open(0, b.did)).length === 1, 10_000, 'A–B open');
    // B's version vector says seq 2, as A's copy does: trusting the first
    // answer would unlock appends at seq 3, which C already holds.
    await new Promise((r) => setTimeout(r, 500));
    assert.is((await journalStatus(mesh, 0)).awaitingSelfHead, true, 'still waiting for C');
    await rejectsWith(offer(mesh, 0, 'r-early'), 'ERR_SELF_SYNC_PENDING');

    // C comes back within the grace period: A pulls 3..5 from it, then appends at 6.
    await mesh.startNode(2, { peers: [mesh.url(0)] });
    await waitFor(async () => (await mesh.status(0)).selfSynced, 15_000, 'A self-synced');
    assert.is((await mesh.heads(0))[a.did], 5, 'A pulled its own 3..5 from C first');
    const next = await offer(mesh, 0, 'r6');
    assert.is(next.seq, 6);
    await mesh.waitConverged(15_000, { [a.did]: 6 });
    await assertNoProofs(mesh);
  });
}, 90_000);

test('forceSelfHead from the operator unlocks appends on a node whose peers are unreachable', async () => {
  const nowhere = gossipUrl(await freePort());
  await withMesh({ n: 1, topology: () => [] }, async (mesh) => {
    await mesh.stopNode(0);
    await mesh.startNode(0, { peers: [nowhere] });
    assert.is((await journalStatus(mesh, 0)).awaitingSelfHead, true);
    await rejectsWith(offer(mesh, 0, 'f1'), 'ERR_SELF_SYNC_PENDING');
    assert.equal(await mesh.sup(0).ask('journal', 'forceSelfHead'), { head: 0 });
    assert.is((await journalStatus(mesh, 0)).awaitingSelfHead, false);
    const ack = await offer(mesh, 0, 'f1');
    assert.is(ack.seq, 1);
  });
});

test('forcing the head on a stale copy forks the feed: both nodes prove it once they meet', async () => {
  const backup = tempDir('meshnode-backup-');
  await withMesh({ n: 2 }, async (mesh) => {
    await mesh.waitReady(20_000);
    const a = mesh.nodes[0]!;
    await offer(mesh, 0, 's1');
    backUp(a.dir, backup);
    await offer(mesh, 0, 's2');
    await offer(mesh, 0, 's3');
    await mesh.waitConverged(15_000, { [a.did]: 3 });
    await mesh.stopNode(0);
    await mesh.stopNode(1);
    restoreFrom(backup, a.dir);
    await mesh.startNode(0, { peers: [mesh.url(1)] });
    assert.equal(await mesh.sup(0).ask('journal', 'forceSelfHead'), { head: 1 });
    const forked = await offer(mesh, 0, 's2-forked');
    assert.is(forked.seq, 2, 'the operator forced a stale head: seq 2 again');
    await mesh.startNode(1);
    for (const i of [0, 1]) {
      await waitFor(
        async () =>
          ((await mesh.sup(i).ask('journal', 'proofs')) as Array<{ author: string }>).some(
            (p) => p.author === a.did,
          ),
        10_000,
        `node ${i} holding the proof of A's fork`,
      );
    }
    // Nobody would accept more of a proven fork: A refuses to append to it.
    await rejectsWith(offer(mesh, 0, 's4'), 'ERR_EQUIVOCATION');
  });
}, 90_000);

test.run();
