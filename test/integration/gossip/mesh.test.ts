/**
 * Gossip between real nodes on loopback (test/helpers/mesh.ts): entries
 * appended on any node, and feeds of other authors ingested on any node,
 * reach every node — across several hops in a chain or through the hub of a
 * star — and every node ends with the same heads. Two nodes that both dial
 * each other keep exactly one connection.
 */
import * as assert from 'uvu/assert';
import type { Entry } from '../../../runtime/domain/codec.js';
import type { Supervisor } from '../../../supervisor/supervisor.js';
import { Feed, append, bodies, ingest, keyOf } from '../../helpers/journal.js';
import type { AppendAck } from '../../helpers/journal.js';
import { TestMesh, freePort, gossipUrl, waitFor, withMesh } from '../../helpers/mesh.js';
import { describe, sleep } from '../../helpers/test.js';

const test = describe('gossip/mesh', 60_000);

/** Append `n` offers as the node; returns the acks. */
async function appendOffers(sup: Supervisor, tag: string, n: number): Promise<AppendAck[]> {
  const acks: AppendAck[] = [];
  for (let k = 0; k < n; k++) {
    acks.push(await append(sup, `${tag}-${k}`, 'offer', bodies.offer(`${tag}_${k}`, 1000 + k)));
  }
  return acks;
}

/** Ingest a feed's entries in batches the journal accepts (at most 1000 each). */
async function ingestAll(sup: Supervisor, entries: Entry[]): Promise<void> {
  for (let i = 0; i < entries.length; i += 1000) {
    const r = await ingest(sup, entries.slice(i, i + 1000));
    assert.is(r.appended, Math.min(1000, entries.length - i), 'the fixture entries are new');
  }
}

/** Every ack's entry is readable by id on node i, with the same author and seq. */
async function assertHasEntries(mesh: TestMesh, i: number, acks: AppendAck[]): Promise<void> {
  for (const a of acks) {
    const e = (await mesh.sup(i).ask('journal', 'get', { id: a.id })) as Entry | null;
    assert.ok(e, `node ${i} holds ${a.author} seq ${a.seq}`);
    assert.is(e!.author, a.author);
    assert.is(e!.seq, a.seq);
  }
}

async function assertVerified(mesh: TestMesh): Promise<void> {
  for (const n of mesh.running) {
    const r = (await mesh.sup(n.index).ask('journal', 'verify')) as { ok: boolean };
    assert.ok(r.ok, `node ${n.index} verifies: ${JSON.stringify(r)}`);
  }
}

test('two nodes: appends and ingested feeds on either node reach the other; identical heads', async () => {
  await withMesh({ n: 2 }, async (mesh) => {
    await mesh.waitReady(20_000);
    const [a, b] = [mesh.nodes[0]!, mesh.nodes[1]!];
    const t0 = Date.now();
    const acksA = await appendOffers(mesh.sup(0), 'a', 3);
    const acksB = await appendOffers(mesh.sup(1), 'b', 4);
    const x = new Feed(keyOf(11));
    const y = new Feed(keyOf(12));
    await ingestAll(mesh.sup(0), x.fill(50));
    await ingestAll(mesh.sup(1), y.fill(70));
    const expect = { [a.did]: 3, [b.did]: 4, [x.did]: 50, [y.did]: 70 };
    await mesh.waitConverged(20_000, expect);
    console.log(`# two nodes converged in ${Date.now() - t0} ms`);
    await assertHasEntries(mesh, 0, acksB);
    await assertHasEntries(mesh, 1, acksA);
    // A replicated entry is the author's bytes, not a copy re-signed by the relay.
    const got = (await mesh.sup(1).ask('journal', 'range', {
      author: x.did,
      from: 1,
      to: 50,
      limit: 50,
    })) as Entry[];
    assert.equal(got, x.entries);
    await assertVerified(mesh);
    // The console's view of the link counts its traffic since it opened (a
    // metrics tick, once a second, must not reset it).
    await sleep(1100);
    const link = (await mesh.open(1, a.did))[0]!;
    assert.ok(link.framesIn > 0);
    assert.ok(
      link.bytesIn >= JSON.stringify(x.entries).length,
      `B's link to A shows ${link.bytesIn} bytes in; feed x alone is ${JSON.stringify(x.entries).length}`,
    );
  });
});

test('five nodes in a chain: writes at both ends and in the middle hop to every node', async () => {
  await withMesh({ n: 5, topology: 'chain' }, async (mesh) => {
    await mesh.waitReady(30_000);
    const t0 = Date.now();
    // One entry at one end must cross all four links.
    const [first] = await appendOffers(mesh.sup(0), 'end0', 1);
    await waitFor(
      async () => ((await mesh.heads(4))[first!.author] ?? 0) === 1,
      20_000,
      'the entry from node 0 on node 4',
    );
    const hopMs = Date.now() - t0;
    const acks = [
      ...(await appendOffers(mesh.sup(0), 'n0', 4)),
      ...(await appendOffers(mesh.sup(2), 'n2', 3)),
      ...(await appendOffers(mesh.sup(4), 'n4', 5)),
    ];
    // A feed longer than one frame (500 entries) ingested at one end, another at the other.
    const x = new Feed(keyOf(21));
    const y = new Feed(keyOf(22));
    await ingestAll(mesh.sup(0), x.fill(1200));
    await ingestAll(mesh.sup(4), y.fill(300));
    const d = mesh.nodes.map((n) => n.did);
    const expect = {
      [d[0]!]: 5,
      [d[2]!]: 3,
      [d[4]!]: 5,
      [x.did]: 1200,
      [y.did]: 300,
    };
    await mesh.waitConverged(40_000, expect);
    console.log(
      `# chain of 5: one append across 4 hops in ${hopMs} ms; 1,513 entries everywhere in ${Date.now() - t0} ms`,
    );
    for (const i of [0, 1, 3, 4]) await assertHasEntries(mesh, i, acks);
    await assertVerified(mesh);
  });
}, 120_000);

test('five nodes in a star: leaves reach each other only through the hub; a feed continued on another node converges', async () => {
  await withMesh({ n: 5, topology: 'star' }, async (mesh) => {
    await mesh.waitReady(30_000);
    for (let i = 1; i < 5; i++) {
      const open = await mesh.open(i);
      assert.equal(
        open.map((p) => p.did),
        [mesh.nodes[0]!.did],
        `leaf ${i} is connected to the hub only`,
      );
    }
    const t0 = Date.now();
    const acks = (
      await Promise.all([1, 2, 3, 4].map((i) => appendOffers(mesh.sup(i), `leaf${i}`, 3)))
    ).flat();
    // Feed z: its first 100 entries ingested on leaf 1, the next 100 on leaf 3
    // once leaf 3 has the first part from leaf 1 (two hops away).
    const z = new Feed(keyOf(31));
    const entries = z.fill(200);
    await ingestAll(mesh.sup(1), entries.slice(0, 100));
    await waitFor(
      async () => ((await mesh.heads(3))[z.did] ?? 0) === 100,
      20_000,
      'the first part of feed z on leaf 3',
    );
    await ingestAll(mesh.sup(3), entries.slice(100));
    const expect: Record<string, number> = { [z.did]: 200 };
    for (let i = 1; i < 5; i++) expect[mesh.nodes[i]!.did] = 3;
    await mesh.waitConverged(40_000, expect);
    console.log(`# star of 5: converged in ${Date.now() - t0} ms`);
    for (const i of [0, 2, 4]) await assertHasEntries(mesh, i, acks);
    await assertVerified(mesh);
  });
}, 120_000);

test('two nodes that both dial each other end with exactly one open connection, on both sides, and stop redialing', async () => {
  const ports = [await freePort(), await freePort()];
  const spec = {
    n: 2,
    ports,
    topology: (i: number) => [1 - i],
    gossip: { backoff_base_ms: 20, backoff_max_ms: 100 },
  };
  await withMesh(spec, async (mesh) => {
    await mesh.waitReady(20_000);
    assert.equal(mesh.nodes[0]!.peers, [gossipUrl(ports[1]!)]);
    assert.equal(mesh.nodes[1]!.peers, [gossipUrl(ports[0]!)]);
    const [a, b] = [mesh.nodes[0]!, mesh.nodes[1]!];
    const snapshot = async () => ({ a: await mesh.open(0, b.did), b: await mesh.open(1, a.did) });
    // Both ends keep the connection dialed by the smaller DID (while both
    // handshakes race, the other one may be open for a moment).
    const smaller = a.did < b.did ? 'a' : 'b';
    await waitFor(
      async () => {
        const s = await snapshot();
        return (
          s.a.length === 1 &&
          s.b.length === 1 &&
          s.a[0]!.direction === (smaller === 'a' ? 'out' : 'in') &&
          s.b[0]!.direction === (smaller === 'b' ? 'out' : 'in')
        );
      },
      5000,
      'one open connection, dialed by the smaller DID, on both sides',
      async () => JSON.stringify(await snapshot()),
    );
    // Many backoff periods later it is still the same single connection (a
    // dial already under way when the link settled has had time to end).
    await sleep(500);
    const before = await snapshot();
    const dialsBefore = [(await mesh.status(0)).dialing, (await mesh.status(1)).dialing];
    await sleep(1500);
    const after = await snapshot();
    assert.is(after.a.length, 1, 'A: one open connection to B');
    assert.is(after.b.length, 1, 'B: one open connection to A');
    assert.is(after.a[0]!.connectedAt, before.a[0]!.connectedAt, 'A kept the same connection');
    assert.is(after.b[0]!.connectedAt, before.b[0]!.connectedAt, 'B kept the same connection');
    assert.is.not(after.a[0]!.direction, after.b[0]!.direction, 'both ends of one connection');
    // Neither side keeps dialing a peer it is already connected to.
    const dialsAfter = [(await mesh.status(0)).dialing, (await mesh.status(1)).dialing];
    assert.equal(
      dialsAfter.map((ds) => ds.map((d) => d.attempt)),
      dialsBefore.map((ds) => ds.map((d) => d.attempt)),
      'no redial attempts while connected',
    );
    // And the one connection carries entries both ways.
    const acksA = await appendOffers(mesh.sup(0), 'dupa', 2);
    const acksB = await appendOffers(mesh.sup(1), 'dupb', 2);
    await mesh.waitConverged(15_000, { [a.did]: 2, [b.did]: 2 });
    await assertHasEntries(mesh, 0, acksB);
    await assertHasEntries(mesh, 1, acksA);
  });
});

test.run();
