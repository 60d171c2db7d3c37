/**
 * A network partition between real node processes (root only: network
 * namespaces). Three hosts on a bridge (test/helpers/netns.ts), each running
 * a node in its own process (test/fixtures/gossip/node-driver) on its own
 * 10.x address, peered in a ring. One host's cable is cut; both sides write
 * (appends as the nodes, feeds of other authors ingested); the idle timeout
 * drops the dead links; the cable is plugged back in and every node must
 * hold the same heads within the deadline. The namespaces are removed
 * whatever happens.
 */
import * as assert from 'uvu/assert';
import { Feed, bodies, keyOf } from '../../helpers/journal.js';
import { canonicalHeads, gossipUrl, waitFor } from '../../helpers/mesh.js';
import { NetnsLan } from '../../helpers/netns.js';
import { NodeProcess } from '../../helpers/node-process.js';
import { describe, rootOnly, tempDir } from '../../helpers/test.js';

const test = describe('gossip/partition', 120_000);
const skipReason = rootOnly();

const PORT = 7946;
const CONVERGE_DEADLINE_MS = 20_000;
const IDLE_TIMEOUT_MS = 2000;

const gossipOf = (lan: NetnsLan, i: number): Record<string, unknown> => ({
  listen: `${lan.hosts[i]!.ip}:${PORT}`,
  // A ring: each node dials the next, so each has two links.
  peers: [gossipUrl(PORT, lan.hosts[(i + 1) % lan.hosts.length]!.ip)],
  anti_entropy_ms: 300,
  idle_timeout_ms: IDLE_TIMEOUT_MS,
  handshake_timeout_ms: 1500,
  backoff_base_ms: 100,
  backoff_max_ms: 1000,
  discover: false,
});

const openPeers = async (n: NodeProcess) =>
  (await n.status()).peers.filter((p) => p.state === 'open').length;

async function headsOf(nodes: NodeProcess[]): Promise<string[]> {
  return Promise.all(nodes.map(async (n) => canonicalHeads(await n.heads())));
}

/** Wait until every node in `nodes` holds exactly `expect`. */
async function waitHeads(
  nodes: NodeProcess[],
  expect: Record<string, number>,
  deadlineMs: number,
  what: string,
): Promise<void> {
  const want = canonicalHeads(expect);
  await waitFor(
    async () => (await headsOf(nodes)).every((h) => h === want),
    deadlineMs,
    what,
    async () =>
      (await Promise.all(nodes.map(async (n) => `${n.name}: ${JSON.stringify(await n.heads())}`)))
        .join('; ')
        .concat(` (want ${JSON.stringify(expect)})`),
    50,
  );
}

const offer = (n: NodeProcess, tag: string, k: number) =>
  n.append(`${tag}-${k}`, 'offer', bodies.offer(`${tag}_${k}`, 9000 + k));

if (skipReason) {
  console.log(`# skipping the partition test: ${skipReason}`);
  test.skip(`partition in network namespaces (${skipReason})`);
} else {
  test('three nodes in network namespaces: a cut cable, writes on both sides, the cable back: all converge', async () => {
    const lan = NetnsLan.create(3);
    const nodes: NodeProcess[] = [];
    try {
      nodes.push(
        ...(await Promise.all(
          lan.hosts.map((h, i) =>
            NodeProcess.spawn(`node${i}`, tempDir(`meshnode-ns${i}-`), gossipOf(lan, i), {
              ns: h.ns,
            }),
          ),
        )),
      );
      const [n0, n1, n2] = nodes as [NodeProcess, NodeProcess, NodeProcess];
      await waitFor(
        async () => {
          for (const n of nodes) {
            if (!(await n.status()).selfSynced || (await openPeers(n)) !== 2) return false;
          }
          return true;
        },
        15_000,
        'the ring up: two links per node, every node self-synced',
      );
      // The network works: one append reaches everyone.
      await offer(n0, 'n0', 0);
      await waitHeads(nodes, { [n0.did]: 1 }, 10_000, 'the first entry everywhere');

      lan.cut(0);
      const x = new Feed(keyOf(71));
      const y = new Feed(keyOf(72));
      // Side A: node 0 alone. Side B: nodes 1 and 2.
      for (let k = 1; k <= 3; k++) await offer(n0, 'n0', k);
      assert.is((await n0.ingest(x.fill(40))).appended, 40);
      for (let k = 0; k < 3; k++) await offer(n1, 'n1', k);
      assert.is((await n2.ingest(y.fill(40))).appended, 40);
      await waitHeads(
        [n1, n2],
        { [n0.did]: 1, [n1.did]: 3, [y.did]: 40 },
        10_000,
        'side B converged without node 0',
      );
      // The partition holds: node 0 saw nothing of side B, side B nothing of node 0's.
      assert.equal(await n0.heads(), { [n0.did]: 4, [x.did]: 40 });
      // The dead links are noticed (idle timeout) on both sides.
      await waitFor(
        async () =>
          (await openPeers(n0)) === 0 && (await openPeers(n1)) === 1 && (await openPeers(n2)) === 1,
        IDLE_TIMEOUT_MS * 4,
        'the links to node 0 dropped',
      );

      lan.heal(0);
      const t0 = Date.now();
      const expect = { [n0.did]: 4, [n1.did]: 3, [x.did]: 40, [y.did]: 40 };
      await waitHeads(
        nodes,
        expect,
        CONVERGE_DEADLINE_MS,
        'all three nodes converged after the heal',
      );
      const ms = Date.now() - t0;
      console.log(`# partition healed: 3 nodes converged ${ms} ms after the cable was back`);
      assert.ok(ms < CONVERGE_DEADLINE_MS);
      await waitFor(
        async () => (await Promise.all(nodes.map(openPeers))).every((k) => k === 2),
        10_000,
        'the ring whole again',
      );
      for (const n of nodes) {
        assert.equal(await n.request('ask', { to: 'journal', action: 'proofs' }), []);
      }
    } catch (err) {
      for (const n of nodes) console.error(`--- ${n.name} log (tail)\n${n.stderr.slice(-4000)}`);
      throw err;
    } finally {
      await Promise.all(nodes.map((n) => n.stop()));
      lan.destroy();
      assert.equal(lan.remaining(), [], 'every namespace removed');
    }
  });
}

test.run();
