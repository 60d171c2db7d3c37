/**
 * What an outsider can make a node spend, each bound found by a hostile
 * review and each stated here as a figure the test asserts: nesting depth,
 * the send queue of a peer that reads nothing, dials drawn by node records,
 * peer slots taken from one address.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import * as assert from 'uvu/assert';
import { CLOSE } from '../../../actors/gossip/peer.js';
import { keyPairFromSeed } from '../../../runtime/crypto/index.js';
import type { Supervisor } from '../../../supervisor/supervisor.js';
import { Feed, ingest, startNode } from '../../helpers/journal.js';
import type { RunningNode } from '../../helpers/journal.js';
import { RawSession } from '../../helpers/gossip-wire.js';
import { TEST_GOSSIP, freePort } from '../../helpers/mesh.js';
import { describe, sleep, tempDir, until } from '../../helpers/test.js';

const test = describe('gossip/bounds', 60_000);

interface Row {
  did: string | null;
  address: string;
  state: string;
  score: number;
  buffered: number;
  framesSkipped: number;
}
interface Status {
  did: string;
  listening: number;
  sendBudgetBytes: number;
  peers: Row[];
  counters: { refusedDials: number; slow: number };
}
const status = (sup: Supervisor) => sup.ask('gossip', 'status') as Promise<Status>;

const throwaway = () => keyPairFromSeed(new Uint8Array(randomBytes(32)));

/** A TCP listener on loopback that counts the connections it gets (and drops each). */
async function countingServer(): Promise<{ port: number; connections: number; close(): void }> {
  const counter = { port: 0, connections: 0, close: () => server.close() };
  const server = createServer((s) => {
    counter.connections++;
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  counter.port = (server.address() as AddressInfo).port;
  return counter;
}

async function withNode(
  gossip: Record<string, unknown>,
  fn: (node: RunningNode, port: number) => Promise<void>,
): Promise<void> {
  const node = await startNode(tempDir(), { gossip: { ...TEST_GOSSIP, ...gossip } });
  try {
    await fn(node, (await status(node.sup)).listening);
  } finally {
    await node.stop();
  }
}

test('a 100k-deep frame is refused before parsing (ERR_TOO_DEEP) and charged to the sender', async () => {
  await withNode({}, async (node, port) => {
    const key = throwaway();
    const s = await RawSession.open(port, key);
    // Tried: a `have` whose heads nest 100,000 arrays deep (overflowed the stack before).
    s.send(`{"t":"have","heads":${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
    await until(
      async () =>
        ((await status(node.sup)).peers.find((p) => p.did === key.did)?.score ?? 100) < 100,
      3000,
      'the deep frame cost the sender score',
    );
    const row = (await status(node.sup)).peers.find((p) => p.did === key.did)!;
    assert.is(row.score, 75, 'charged as a malformed frame (25)');
    assert.is(s.close, undefined, 'one bad frame is not yet a ban; the link is up');
    s.ws.terminate();
  });
});

test('a peer that reads nothing: its send queue stays within the stated budget', async () => {
  const BUFFERED = 65_536;
  const FRAME = 1024 * 1024;
  await withNode(
    { max_buffered_bytes: BUFFERED, max_frame_bytes: FRAME, anti_entropy_ms: 50 },
    async (node, port) => {
      // 3,000 one-entry feeds from throwaway keys: every vv is ~200 KB.
      const entries = Array.from({ length: 3000 }, () => new Feed(throwaway()).fill(1)[0]!);
      for (let i = 0; i < entries.length; i += 1000) {
        await ingest(node.sup, entries.slice(i, i + 1000));
      }
      const budget = (await status(node.sup)).sendBudgetBytes;
      assert.is(budget, 2 * BUFFERED + FRAME, 'budget = 2 x max_buffered_bytes + one frame');
      const readers = await Promise.all(
        Array.from({ length: 5 }, () => RawSession.open(port, throwaway())),
      );
      const heapBefore = (await node.sup.stats('gossip')).heapUsed;
      // They stop reading: the kernel's buffers fill, then the node's queue.
      for (const r of readers) (r.ws as unknown as { _socket: { pause(): void } })._socket.pause();
      let worst = 0;
      let skipped = 0;
      const heaps: number[] = [];
      const end = Date.now() + 4000;
      while (Date.now() < end) {
        heaps.push((await node.sup.stats('gossip')).heapUsed);
        for (const p of (await status(node.sup)).peers) {
          worst = Math.max(worst, p.buffered);
          skipped = Math.max(skipped, p.framesSkipped);
        }
        await sleep(50);
      }
      // heapUsed swings with the garbage of each anti-entropy round (vv frames
      // built for every peer); a queue that grows moves the floor. Compared:
      // the highest sample of the first and of the last third of the window.
      const third = Math.floor(heaps.length / 3);
      const early = Math.max(...heaps.slice(0, third));
      const late = Math.max(...heaps.slice(-third));
      const bound = readers.length * budget;
      const mb = (b: number) => (b / 1048576).toFixed(1);
      console.log(
        `  slow readers: worst queue ${worst} B, budget ${budget} B, skipped ${skipped}; ` +
          `gossip heap ${mb(heapBefore)} MB idle, ${mb(early)} → ${mb(late)} MB (growth bound ${mb(bound)} MB)`,
      );
      assert.ok(late - early <= bound, `gossip heap grew ${mb(late - early)} MB over the window`);
      assert.ok(worst <= budget, `worst queue ${worst} B within the budget ${budget} B`);
      assert.ok(skipped > 0, 'vv frames were skipped for peers that were behind');
      for (const r of readers) r.ws.terminate();
    },
  );
});

test('node records by authors we have no reason to trust draw no dials', async () => {
  const target = await countingServer(); // where the records point
  const targetPort = target.port;
  try {
    await withNode({ discover: true, anti_entropy_ms: 100 }, async (node) => {
      // Tried: 50 throwaway keys each announce a gossip endpoint on our counter,
      // some with paths and ports a scanner would pick.
      const records = Array.from({ length: 50 }, (_, i) =>
        new Feed(throwaway()).push('node', {
          name: `n${i}`,
          gossip: `wss://127.0.0.1:${targetPort}/${i % 2 ? 'gossip' : 'admin'}`,
          meshIp: '10.0.0.9',
        }),
      );
      await ingest(node.sup, records);
      await sleep(1500); // 15 anti-entropy rounds
      const s = await status(node.sup);
      assert.is(target.connections, 0, 'not one connection to the announced endpoints');
      assert.ok(s.counters.refusedDials >= 50, `refused ${s.counters.refusedDials}`);
    });
  } finally {
    target.close();
  }
});

test('records of trusted authors are dialed, at most max_dial_targets, within dial_rate_per_s', async () => {
  const target = await countingServer();
  const targetPort = target.port;
  const keys = Array.from({ length: 50 }, throwaway);
  const allow = join(tempDir(), 'allow');
  writeFileSync(allow, keys.map((k) => k.did).join('\n') + '\n');
  const RATE = 4;
  const TARGETS = 10;
  const WINDOW_MS = 2000;
  try {
    await withNode(
      {
        discover: true,
        anti_entropy_ms: 100,
        mode: 'closed',
        allowlist: allow,
        dial_rate_per_s: RATE,
        max_dial_targets: TARGETS,
      },
      async (node) => {
        // 50 allowlisted authors each announce an endpoint on our counter.
        const records = keys.map((k, i) =>
          new Feed(k).push('node', {
            name: `n${i}`,
            gossip: `wss://127.0.0.1:${targetPort}/gossip`.replace('/gossip', `/g${i}`),
            meshIp: '10.0.0.9',
          }),
        );
        await ingest(node.sup, records);
        const t0 = Date.now();
        const counted = target.connections;
        await sleep(WINDOW_MS);
        const connections = target.connections - counted;
        const elapsed = (Date.now() - t0) / 1000;
        const s = (await node.sup.ask('gossip', 'status')) as {
          dialing: Array<{ source: string }>;
        };
        const held = s.dialing.filter((d) => d.source === 'discovered').length;
        const bound = RATE + Math.ceil(RATE * elapsed) + 1;
        console.log(
          `  dials: ${connections} in ${elapsed.toFixed(1)} s (bound ${bound}), ${held} targets held`,
        );
        assert.ok(connections >= 1, 'trusted records are followed');
        assert.ok(connections <= bound, `${connections} connections (bound ${bound})`);
        assert.ok(held <= TARGETS, `${held} targets held (max ${TARGETS})`);
      },
    );
  } finally {
    target.close();
  }
});

test('max_peers_per_ip: throwaway keys from one address cannot fill the node', async () => {
  await withNode({ max_peers_per_ip: 2, max_peers: 8 }, async (node, port) => {
    const from3 = [];
    for (let i = 0; i < 4; i++) {
      from3.push(await RawSession.open(port, throwaway(), { localAddress: '127.0.0.3' }));
    }
    const refused = from3.filter((s) => s.close?.code === CLOSE.full);
    assert.is(refused.length, 2, 'past 2 from 127.0.0.3, each is refused with 4008');
    assert.match(refused[0]!.close!.reason, /too many peers from this address/);
    const other = await RawSession.open(port, throwaway(), { localAddress: '127.0.0.4' });
    assert.is(other.close, undefined, 'another address still gets in');
    for (const s of [...from3, other]) s.ws.terminate();
  });
});

test('a configured peer gets in when the slots are full: the worst untrusted peer is evicted', async () => {
  // A full of throwaway keys before its configured peer B is up; then B comes up and A dials it.
  const portB = await freePort();
  await withNode({ max_peers: 2, peers: [`wss://127.0.0.1:${portB}/gossip`] }, async (a, portA) => {
    const squatters = [
      await RawSession.open(portA, throwaway()),
      await RawSession.open(portA, throwaway()),
    ];
    assert.ok(
      squatters.every((s) => s.close === undefined),
      'two untrusted peers fill A',
    );
    const third = await RawSession.open(portA, throwaway());
    assert.is(third.close?.code, CLOSE.full, 'a third untrusted one is refused (4008)');
    const b = await startNode(tempDir(), {
      gossip: { ...TEST_GOSSIP, listen: `127.0.0.1:${portB}` },
    });
    try {
      const didB = (await status(b.sup)).did;
      await until(
        async () => (await status(a.sup)).peers.some((p) => p.did === didB && p.state === 'open'),
        10_000,
        'A linked to its configured peer B',
      );
      // The squatter hears of its eviction a moment after A admitted B.
      await until(() => squatters.some((s) => s.close !== undefined), 3000, 'a squatter closed');
      const evicted = squatters.filter((s) => s.close?.code === CLOSE.full);
      const seen = JSON.stringify(squatters.map((s) => s.close));
      assert.is(evicted.length, 1, `one squatter evicted to make room: ${seen}`);
      assert.match(evicted[0]!.close!.reason, /evicted/);
    } finally {
      for (const s of [...squatters, third]) s.ws.terminate();
      await b.stop();
    }
  });
});

test.run();
