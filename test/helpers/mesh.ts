/**
 * A mesh of real nodes in this process, for gossip tests: one Supervisor per
 * node (the four built-in actors on worker threads) on its own temp state
 * directory, gossip listening on 127.0.0.1, peers given as wss:// URLs (TLS 1.3)
 * according to a topology. Nodes start in index order; a node dials only
 * nodes whose port is known by then (earlier ones, or ports picked up front
 * with `freePort`), so a chain or a star needs no port guessing.
 *
 * Timers are shortened (anti-entropy, backoff, handshake) so a test
 * converges in a second or two, and discovery through `node` records is
 * off: the fixtures' node bodies name addresses that do not exist here.
 */
import { createServer } from 'node:net';
import type { Logger } from 'pino';
import { Supervisor } from '../../supervisor/supervisor.js';
import { nodeInput } from './journal.js';
import { memoryLogger } from './supervisor.js';
import { sleep, tempDir } from './test.js';
import type { GossipStatus, PeerInfo } from '../../runtime/protocol/gossip.js';

/** Gossip settings every test node gets unless it overrides them. */
export const TEST_GOSSIP = {
  listen: '127.0.0.1:0',
  anti_entropy_ms: 200,
  backoff_base_ms: 50,
  backoff_max_ms: 500,
  handshake_timeout_ms: 3000,
  discover: false,
  // Tests count the entries they write: a node's own record would be one more (directory tests turn it on).
  announce: false,
  // Every test node and raw client is on 127.0.0.1.
  max_peers_per_ip: 256,
} as const;

/** Which earlier (or pre-ported) nodes node `i` dials. */
export type Topology = 'chain' | 'star' | 'none' | ((i: number, n: number) => number[]);

export interface MeshSpec {
  n: number;
  topology?: Topology;
  /** [gossip] overrides for every node. */
  gossip?: Record<string, unknown>;
  /** [gossip] overrides for node i (after `gossip`). */
  gossipOf?: (i: number) => Record<string, unknown>;
  /** Listen ports picked up front (see `freePort`): lets a node dial one started after it. */
  ports?: number[];
  /** Other config sections for every node ([mesh], [grants], …). */
  config?: Record<string, unknown>;
}

/** What tests read of `peers` and `status` (runtime/protocol/gossip.ts declares it). */
export type PeerRow = PeerInfo;
export type { GossipStatus };

export interface MeshNode {
  readonly index: number;
  dir: string;
  port: number;
  did: string;
  /** The URLs it was last started with as peers. */
  peers: string[];
  sup: Supervisor | null;
  records: Array<Record<string, unknown>>;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export const gossipUrl = (port: number, host = '127.0.0.1'): string =>
  `wss://${host}:${port}/gossip`;

function dialsOf(topology: Topology, i: number, n: number): number[] {
  if (typeof topology === 'function') return topology(i, n);
  if (topology === 'none' || i === 0) return [];
  return topology === 'chain' ? [i - 1] : [0];
}

export class TestMesh {
  readonly nodes: MeshNode[] = [];

  private constructor(private readonly spec: MeshSpec) {}

  /** Start `spec.n` nodes in order; stops whatever started if one fails. */
  static async start(spec: MeshSpec): Promise<TestMesh> {
    const mesh = new TestMesh(spec);
    try {
      for (let i = 0; i < spec.n; i++) {
        mesh.nodes.push({
          index: i,
          dir: tempDir(`meshnode-gossip-${i}-`),
          port: spec.ports?.[i] ?? 0,
          did: '',
          peers: [],
          sup: null,
          records: [],
        });
      }
      for (let i = 0; i < spec.n; i++) await mesh.startNode(i);
    } catch (err) {
      await mesh.stop();
      throw err;
    }
    return mesh;
  }

  /** The running supervisor of node i. */
  sup(i: number): Supervisor {
    const sup = this.nodes[i]!.sup;
    if (!sup) throw new Error(`node ${i} is not running`);
    return sup;
  }

  get running(): MeshNode[] {
    return this.nodes.filter((n) => n.sup !== null);
  }

  /**
   * Start (or restart) node i on its state directory. It listens on its
   * previous port if it had one, so the nodes dialing it find it again.
   * `peers` replaces the topology's URLs for this start.
   */
  async startNode(
    i: number,
    opts: { peers?: string[]; gossip?: Record<string, unknown>; logger?: Logger } = {},
  ): Promise<Supervisor> {
    const node = this.nodes[i]!;
    if (node.sup) throw new Error(`node ${i} is already running`);
    const peers =
      opts.peers ??
      dialsOf(this.spec.topology ?? 'chain', i, this.spec.n).map((j) => {
        const port = this.nodes[j]?.port;
        if (!port) throw new Error(`node ${i} dials node ${j}, whose port is not known yet`);
        return gossipUrl(port);
      });
    const gossip = {
      ...TEST_GOSSIP,
      ...this.spec.gossip,
      ...this.spec.gossipOf?.(i),
      ...opts.gossip,
      peers,
      ...(node.port ? { listen: `127.0.0.1:${node.port}` } : {}),
    };
    const mem = memoryLogger(process.env.MESHNODE_TEST_LOG ?? 'warn');
    const sup = new Supervisor(nodeInput(node.dir, { ...this.spec.config, gossip }), {
      logger: opts.logger ?? mem.logger,
    });
    node.records = mem.records;
    try {
      await sup.start();
    } catch (err) {
      await sup.stop('start failed');
      throw err;
    }
    node.sup = sup;
    node.peers = peers;
    const st = (await sup.ask('gossip', 'status')) as GossipStatus;
    node.port = st.listening;
    node.did = st.did;
    return sup;
  }

  /** Stop node i gracefully (its state directory stays). */
  async stopNode(i: number): Promise<void> {
    const sup = this.nodes[i]!.sup;
    this.nodes[i]!.sup = null;
    await sup?.stop('test: node stopped');
  }

  /** Replace node i by a fresh node (new state directory, new key, new port). */
  async restartFresh(i: number): Promise<Supervisor> {
    await this.stopNode(i);
    const node = this.nodes[i]!;
    node.dir = tempDir(`meshnode-gossip-${i}-`);
    node.port = 0;
    return this.startNode(i);
  }

  /** Stop every running node (in parallel); safe to call twice. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((_, i) => this.stopNode(i)));
  }

  url(i: number): string {
    return gossipUrl(this.nodes[i]!.port);
  }

  status(i: number): Promise<GossipStatus> {
    return this.sup(i).ask('gossip', 'status') as Promise<GossipStatus>;
  }

  heads(i: number): Promise<Record<string, number>> {
    return this.sup(i).ask('journal', 'heads') as Promise<Record<string, number>>;
  }

  /** Open connections of node i, optionally only those to `did`. */
  async open(i: number, did?: string): Promise<PeerRow[]> {
    const st = await this.status(i);
    return st.peers.filter((p) => p.state === 'open' && (did === undefined || p.did === did));
  }

  /** Every running node's heads, keyed by node index. */
  async allHeads(): Promise<Map<number, Record<string, number>>> {
    const out = new Map<number, Record<string, number>>();
    await Promise.all(this.running.map(async (n) => out.set(n.index, await this.heads(n.index))));
    return out;
  }

  /** True if every running node has the same version vector (and it has `expect` if given). */
  async headsEqual(expect?: Record<string, number>): Promise<boolean> {
    const all = [...(await this.allHeads()).values()].map(canonicalHeads);
    if (expect && all[0] !== canonicalHeads(expect)) return false;
    return all.every((h) => h === all[0]);
  }

  /** Wait until every running node holds the same heads (and `expect`, if given). */
  async waitConverged(deadlineMs: number, expect?: Record<string, number>): Promise<void> {
    await waitFor(
      () => this.headsEqual(expect),
      deadlineMs,
      'heads equal on all nodes',
      () => this.describeHeads(),
    );
  }

  /**
   * Wait until every running node has an open connection and has confirmed
   * its own feed head (the journal takes appends as the node from then on).
   */
  async waitReady(deadlineMs: number): Promise<void> {
    await waitFor(
      async () => {
        for (const n of this.running) {
          const st = await this.status(n.index);
          if (!st.selfSynced) return false;
          if (this.nodes.length > 1 && !st.peers.some((p) => p.state === 'open')) return false;
        }
        return true;
      },
      deadlineMs,
      'every node connected and self-synced',
      async () =>
        JSON.stringify(
          await Promise.all(
            this.running.map(async (n) => {
              const st = await this.status(n.index);
              return {
                node: n.index,
                selfSynced: st.selfSynced,
                open: st.peers.filter((p) => p.state === 'open').length,
              };
            }),
          ),
        ),
    );
  }

  /** Per-node head summary (node index: feeds / entries) for failure messages. */
  async describeHeads(): Promise<string> {
    const parts: string[] = [];
    for (const [i, h] of await this.allHeads()) {
      const total = Object.values(h).reduce((a, b) => a + b, 0);
      parts.push(`node ${i}: ${Object.keys(h).length} feeds, ${total} entries`);
    }
    return parts.join('; ');
  }

  /** Warnings and errors the nodes logged (for failure messages). */
  logs(i: number): string[] {
    return this.nodes[i]!.records.map((r) => `${String(r.msg)} ${JSON.stringify(r)}`);
  }
}

/** Start a mesh, run `fn`, always stop every node. */
export async function withMesh<T>(spec: MeshSpec, fn: (mesh: TestMesh) => Promise<T>): Promise<T> {
  const mesh = await TestMesh.start(spec);
  try {
    return await fn(mesh);
  } finally {
    await mesh.stop();
  }
}

/** A version vector as a string that compares equal iff the vectors are equal. */
export function canonicalHeads(h: Record<string, number>): string {
  return JSON.stringify(Object.entries(h).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Poll `predicate` (every `intervalMs`) until it is true; after `deadlineMs`
 * throw, naming `what` and, if given, the state `detail()` describes then.
 */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  deadlineMs: number,
  what: string,
  detail?: () => string | Promise<string>,
  intervalMs = 25,
): Promise<void> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() >= end) break;
    await sleep(intervalMs);
  }
  let state = '';
  if (detail) {
    try {
      state = `: ${await detail()}`;
    } catch (err) {
      state = `: (no detail: ${(err as Error).message})`;
    }
  }
  throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}${state}`);
}
