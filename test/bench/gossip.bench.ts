/**
 * Gossip benchmarks (`npm run bench -- gossip`), baselines measured in this run:
 *
 *  - replicate: 100,000 entries from 100 authors pulled by an empty node
 *    from one that has them, over loopback WebSockets, until its heads equal
 *    the source's — vs hypercore@11.37.1 replicating 100,000 blocks of the
 *    same size between two cores over loopback TCP (>= 1.5);
 *  - latency: 10 nodes in a random connected topology; time from an append
 *    (ack) to the entry being present on every node, p50 and p99 over 1,000
 *    appends (p99 <= 1 s); baseline: the append's own ack latency;
 *  - idle_cpu: a node with 10 connected peers and no writes: the gossip
 *    actor's event-loop busy share over 10 s (<= 2 % of one core); baseline:
 *    the same node's idle nft actor.
 *  - wire_bytes_per_entry: gossip payload bytes received per replicated
 *    entry (frames as sent, before TLS records), vs the entry's own encoded
 *    size (<= 1.5x);
 *  - handshake_p50 / p99: TLS 1.3 connect + the did:key handshake to
 *    admission (the first vv), 200 connections from a raw client; baseline:
 *    a bare TLS 1.3 connect to the same port (p99 <= 250 ms).
 * Links are TLS 1.3 (the default), as hypercore's are encrypted (Noise).
 */
import { createServer, connect } from 'node:net';
import type { Server } from 'node:net';
import { join } from 'node:path';
import Hypercore from 'hypercore';
import { pino } from 'pino';
import {
  ENTRY_VERSION,
  encodeEntry,
  entryId,
  sigToString,
  signingBytes,
} from '../../runtime/domain/codec.js';
import type { Entry, UnsignedEntry } from '../../runtime/domain/codec.js';
import { JournalStore } from '../../actors/journal/store.js';
import { sealEntry } from '../../actors/journal/validate.js';
import { generateKeyPair, loadFastHash, sign } from '../../runtime/crypto/index.js';
import type { KeyPair } from '../../runtime/crypto/index.js';
import { Supervisor } from '../../supervisor/supervisor.js';
import { nodeInput } from '../helpers/journal.js';
import { tempDir } from '../helpers/test.js';
import { RAW_TLS, RawSession } from '../helpers/gossip-wire.js';
import { connect as tlsConnect } from 'node:tls';
import { runSuite } from './harness.js';
import type { Reporter } from './harness.js';

const AUTHORS = 100;
const PER_AUTHOR = 1000;
const LATENCY_NODES = 10;
const LATENCY_APPENDS = 1000;
const IDLE_PEERS = 10;
const IDLE_WINDOW_MS = 10_000;
const HANDSHAKES = 200;

// Baselines that seal entries hash them as the journal writer does (runtime/crypto/hash.ts).
await loadFastHash();

await runSuite('gossip', async (r) => {
  const feeds = Array.from({ length: AUTHORS }, () => makeFeed(generateKeyPair(), PER_AUTHOR));
  const blockBytes = encodeEntry(feeds[0]![0]!).length;
  const hyperRate = await hypercoreReplication(AUTHORS * PER_AUTHOR, blockBytes);
  await replicate(r, feeds, hyperRate, blockBytes);
  await latencyAndIdle(r);
});

async function replicate(
  r: Reporter,
  feeds: Entry[][],
  hyperRate: number,
  blockBytes: number,
): Promise<void> {
  const total = feeds.length * feeds[0]!.length;
  // The source's journal is written directly (no network, not measured).
  const srcDir = tempDir('meshnode-bench-src-');
  const store = await JournalStore.open(join(srcDir, 'journal'));
  for (let seq = 0; seq < PER_AUTHOR; seq += 10) {
    const batch = feeds.flatMap((f) => f.slice(seq, seq + 10)).map((e) => sealEntry(e));
    await store.commit(batch);
  }
  await store.close();
  const src = await startNode(srcDir, {});
  const port = ((await src.ask('gossip', 'status')) as { listening: number }).listening;
  const want = (await src.ask('journal', 'heads')) as Record<string, number>;
  const t = performance.now();
  const dst = await startNode(tempDir('meshnode-bench-dst-'), {
    peers: [`wss://127.0.0.1:${port}/gossip`],
  });
  await waitFor(
    async () => sameHeads((await dst.ask('journal', 'heads')) as never, want),
    300_000,
    20,
  );
  const rate = total / ((performance.now() - t) / 1000);
  r.info(
    'replicate_entry_bytes',
    `${blockBytes} B per entry, ${total} entries, ${AUTHORS} authors`,
  );
  const dstPeers = ((await dst.ask('gossip', 'status')) as { peers: Array<{ bytesIn: number }> })
    .peers;
  const bytesIn = dstPeers.reduce((n, p) => n + p.bytesIn, 0);
  r.figure({
    name: 'wire_bytes_per_entry',
    value: bytesIn / total,
    unit: 'B',
    baseline: blockBytes,
    op: '<=',
    target: 1.5,
    on: 'ratio',
  });
  r.figure({
    name: 'replicate_vs_hypercore',
    value: rate,
    unit: 'entries/s',
    baseline: hyperRate,
    op: '>=',
    target: 1.5,
    on: 'ratio',
  });
  await dst.stop('bench over');
  await handshakes(r, port);
  await src.stop('bench over');
}

/** Handshake latency against a running node, next to a bare TLS connect to the same port. */
async function handshakes(r: Reporter, port: number): Promise<void> {
  const full: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < HANDSHAKES; i++) {
    let t = performance.now();
    await new Promise<void>((resolve, reject) => {
      const s = tlsConnect({ port, host: '127.0.0.1', ...RAW_TLS }, () => {
        s.destroy();
        resolve();
      });
      s.once('error', reject);
    });
    bare.push(performance.now() - t);
    t = performance.now();
    const session = await RawSession.open(port, generateKeyPair());
    full.push(performance.now() - t);
    if (session.close) throw new Error(`handshake refused: ${session.close.code}`);
    session.ws.terminate();
  }
  for (const [name, q] of [
    ['handshake_p50', 0.5],
    ['handshake_p99', 0.99],
  ] as const) {
    r.figure({
      name,
      value: quantile(full, q),
      unit: 'ms',
      baseline: quantile(bare, q),
      op: '<=',
      target: 250,
      on: 'value',
    });
  }
}

function quantile(xs: number[], q: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function latencyAndIdle(r: Reporter): Promise<void> {
  const nodes: Supervisor[] = [];
  const ports: number[] = [];
  // A random spanning tree (each node links to a random earlier one) plus a few random extra links.
  for (let i = 0; i < LATENCY_NODES; i++) {
    const links = new Set<number>();
    if (i > 0) links.add(Math.floor(Math.random() * i));
    if (i > 1 && Math.random() < 0.5) links.add(Math.floor(Math.random() * i));
    const sup = await startNode(tempDir('meshnode-bench-lat-'), {
      peers: [...links].map((j) => `wss://127.0.0.1:${ports[j]}/gossip`),
    });
    nodes.push(sup);
    ports.push(((await sup.ask('gossip', 'status')) as { listening: number }).listening);
  }
  const dids = await Promise.all(
    nodes.map(async (n) => ((await n.ask('journal', 'identity')) as { did: string }).did),
  );
  await waitFor(
    async () => (await Promise.all(nodes.map(connectedPeers))).every((c) => c > 0),
    30_000,
  );

  const spread: number[] = [];
  const acks: number[] = [];
  for (let i = 0; i < LATENCY_APPENDS; i++) {
    const at = Math.floor(Math.random() * nodes.length);
    const t = performance.now();
    const { seq } = (await nodes[at]!.ask('journal', 'append', {
      kind: 'subscribe',
      body: { provider: dids[(at + 1) % nodes.length], service: 'ssh' },
      requestId: `lat${i}`,
    })) as { seq: number };
    acks.push(performance.now() - t);
    await waitFor(
      async () =>
        (await Promise.all(nodes.map((n) => n.ask('journal', 'heads')))).every(
          (h) => ((h as Record<string, number>)[dids[at]!] ?? 0) >= seq,
        ),
      10_000,
      0,
    );
    spread.push(performance.now() - t);
  }
  const p = (xs: number[], q: number) =>
    [...xs].sort((a, b) => a - b)[Math.floor(q * (xs.length - 1))]!;
  for (const [name, q] of [
    ['spread_p50', 0.5],
    ['spread_p99', 0.99],
  ] as const) {
    r.figure({
      name,
      value: round(p(spread, q)),
      unit: 'ms',
      baseline: round(p(acks, q)),
      op: '<=',
      target: 1000,
      on: 'value',
    });
  }

  // Idle: one more node dials all ten, then nobody writes.
  const hub = await startNode(tempDir('meshnode-bench-hub-'), {
    peers: ports.map((p) => `wss://127.0.0.1:${p}/gossip`),
  });
  await waitFor(async () => (await connectedPeers(hub)) === IDLE_PEERS, 30_000);
  await sleep(1000);
  const g0 = (await hub.stats('gossip')).loop.activeMs;
  const n0 = (await hub.stats('nft')).loop.activeMs;
  const t0 = performance.now();
  await sleep(IDLE_WINDOW_MS);
  const wall = performance.now() - t0;
  const gossipShare = (((await hub.stats('gossip')).loop.activeMs - g0) / wall) * 100;
  const nftShare = (((await hub.stats('nft')).loop.activeMs - n0) / wall) * 100;
  r.figure({
    name: 'idle_cpu',
    value: round(gossipShare),
    unit: '%',
    baseline: round(nftShare),
    op: '<=',
    target: 2,
    on: 'value',
  });
  await hub.stop('bench over');
  for (const n of nodes) await n.stop('bench over');
}

async function startNode(dir: string, gossip: Record<string, unknown>): Promise<Supervisor> {
  const sup = new Supervisor(
    nodeInput(dir, { gossip: { listen: '127.0.0.1:0', anti_entropy_ms: 5000, ...gossip } }),
    { logger: pino({ level: 'warn' }) },
  );
  await sup.start();
  return sup;
}

async function connectedPeers(sup: Supervisor): Promise<number> {
  const s = (await sup.ask('gossip', 'status')) as { peers: Array<{ state: string }> };
  return s.peers.filter((p) => p.state === 'open').length;
}

/** hypercore@11: one core appends `n` blocks, a second replicates them over loopback TCP. */
async function hypercoreReplication(n: number, blockBytes: number): Promise<number> {
  const dir = tempDir('meshnode-bench-hyper-');
  const source = new Hypercore(join(dir, 'a'));
  await source.ready();
  const block = Buffer.alloc(blockBytes, 0x61);
  for (let i = 0; i < n; i += 1000) {
    await source.append(Array.from({ length: Math.min(1000, n - i) }, () => block));
  }
  const server: Server = createServer((socket) => {
    socket.pipe(source.replicate(false)).pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const copy = new Hypercore(join(dir, 'b'), source.key);
  await copy.ready();
  const t = performance.now();
  const socket = connect(port, '127.0.0.1');
  socket.pipe(copy.replicate(true)).pipe(socket);
  await copy.download({ start: 0, end: n }).done();
  const rate = n / ((performance.now() - t) / 1000);
  socket.destroy();
  server.close();
  await copy.close();
  await source.close();
  return rate;
}

function makeFeed(key: KeyPair, n: number): Entry[] {
  const out: Entry[] = [];
  let prev: string | null = null;
  for (let seq = 1; seq <= n; seq++) {
    const unsigned: UnsignedEntry = {
      v: ENTRY_VERSION,
      author: key.did,
      seq,
      prev,
      ts: 1_700_000_000_000 + seq,
      kind: 'node',
      body: { name: `n${seq % 10}`, gossip: 'ws://127.0.0.1:7300', meshIp: '10.0.0.1' },
    };
    const entry: Entry = { ...unsigned, sig: sigToString(sign(key, signingBytes(unsigned))) };
    prev = entryId(encodeEntry(entry));
    out.push(entry);
  }
  return out;
}

function sameHeads(a: Record<string, number>, b: Record<string, number>): boolean {
  const keys = Object.keys(b);
  return keys.every((k) => a[k] === b[k]);
}

async function waitFor(
  check: () => Promise<boolean>,
  deadlineMs: number,
  everyMs = 50,
): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`condition not met within ${deadlineMs} ms`);
    await sleep(everyMs);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
