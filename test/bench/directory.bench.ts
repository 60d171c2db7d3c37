/**
 * The mesh directory's figures (issue 17):
 *
 *  - services_first_page / services_whole: `services --json` over 100,000
 *    offers from 10,000 member nodes of a closed mesh — the journal's
 *    catalog (actors/journal/catalog.ts) on the real LMDB store, JSON-encoded
 *    as the admin API sends it. Targets: first page <= 100 ms, the whole
 *    list (every page) <= 2 s. Baseline: reading the same rows raw (the
 *    `offers` view, page by page, no membership, no filtering).
 *  - ingest_with_membership: committing the same 120,000 entries (the
 *    founding, 10,000 member entries, 10,000 node records, 100,000 offers)
 *    into a journal that belongs to the mesh — every entry's cut looked up
 *    in the membership, the membership derived again after each batch that
 *    changed it, feeds past a cut truncated — against a journal that belongs
 *    to no mesh (no membership at all). Target: <= 1.3x.
 *  - join_to_visible_p50 / _p99: a 10-node closed mesh on loopback (TLS,
 *    discovery on); 50 times, a fresh node joins with a token and we time
 *    from the redemption (join answered) to the new node listed in `nodes`
 *    by all ten. Baseline: an ordinary entry (an offer appended at the
 *    founder) listed by all ten, measured in the same mesh. Target: p99 <= 1 s.
 */
import { rmSync } from 'node:fs';
import { join as joinPath } from 'node:path';
import { JournalStore } from '../../actors/journal/store.js';
import { Catalog } from '../../actors/journal/catalog.js';
import { planBatch } from '../../actors/journal/feed.js';
import { sealEntry } from '../../actors/journal/validate.js';
import type { CheckedEntry } from '../../actors/journal/validate.js';
import { generateKeyPair, loadFastHash, sign } from '../../runtime/crypto/index.js';
import type { KeyPair } from '../../runtime/crypto/index.js';
import { signingBytes, sigToString } from '../../runtime/domain/codec.js';
import type { Entry, UnsignedEntry } from '../../runtime/domain/codec.js';
import type { EntryKind } from '../../runtime/domain/entries.js';
import type { Supervisor } from '../../supervisor/supervisor.js';
import { TestMesh, waitFor } from '../helpers/mesh.js';
import { tempDir } from '../helpers/test.js';
import { describe as describeSummary, gc, runSuite, summarize } from './harness.js';
import type { Reporter } from './harness.js';

const NODES = 10_000;
const OFFERS_PER_NODE = 10;
const BATCH = 1000;
const PAGE = 1000;
const MESH_NODES = 10;
const JOINS = 50;
const T0 = 1_700_000_000_000;

await loadFastHash();

// --- directory scale ---------------------------------------------------------

/** One author's chain of signed entries. */
class Chain {
  readonly entries: CheckedEntry[] = [];
  private prev: string | null = null;
  constructor(readonly key: KeyPair) {}
  push(kind: EntryKind, body: Record<string, unknown>): CheckedEntry {
    const unsigned: UnsignedEntry = {
      v: 1,
      author: this.key.did,
      seq: this.entries.length + 1,
      prev: this.prev,
      ts: T0 + this.entries.length,
      kind,
      body,
    };
    const entry: Entry = { ...unsigned, sig: sigToString(sign(this.key, signingBytes(unsigned))) };
    const c = sealEntry(entry);
    this.prev = c.id;
    this.entries.push(c);
    return c;
  }
}

async function directoryScale(r: Reporter): Promise<void> {
  const started = performance.now();
  const founder = new Chain(generateKeyPair());
  const mesh = founder.push('mesh', { name: 'big', admission: 'closed', createdAt: T0 });
  const nodes: Chain[] = [];
  for (let i = 0; i < NODES; i++) {
    const c = new Chain(generateKeyPair());
    founder.push('member', {
      mesh: mesh.id,
      did: c.key.did,
      rights: ['service.offer'],
      invite: (i + 1).toString(16).padStart(64, '0'),
    });
    c.push('node', {
      name: `n${i}`,
      gossip: `wss://10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:7946/gossip`,
      meshIp: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    });
    for (let k = 0; k < OFFERS_PER_NODE; k++) {
      c.push('offer', {
        service: `s${k}`,
        port: 1000 + k,
        proto: 'tcp',
        mode: 'auto',
        leaseSeconds: 3600,
      });
    }
    nodes.push(c);
  }
  const all = [...founder.entries, ...nodes.flatMap((c) => c.entries)];
  r.info(
    'scale_entries',
    `${all.length} signed entries (${NODES} members, ${NODES * OFFERS_PER_NODE} offers) built in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );

  // Ingest the same entries twice: into a journal of the mesh, and into one of no mesh.
  const plainDir = tempDir('meshnode-bench-dir-plain-');
  const meshDir = tempDir('meshnode-bench-dir-mesh-');
  const plain = await JournalStore.open(joinPath(plainDir, 'journal'));
  const withMesh = await JournalStore.open(joinPath(meshDir, 'journal'));
  await withMesh.setMeshId(mesh.id);
  const plainMs: number[] = [];
  const meshMs: number[] = [];
  // Alternate batches between the two so machine noise falls on both alike.
  for (let i = 0; i < all.length; i += BATCH) {
    const batch = all.slice(i, i + BATCH);
    for (const [store, samples] of [
      [plain, plainMs],
      [withMesh, meshMs],
    ] as const) {
      const t = performance.now();
      const plan = planBatch(batch, store);
      await store.commit(plan.appends);
      if (store.membershipStale()) await store.truncateOverCut();
      samples.push(performance.now() - t);
    }
  }
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const members = withMesh.membership().data.members.length;
  if (members !== NODES + 1) throw new Error(`membership has ${members} members, not ${NODES + 1}`);
  r.figure({
    name: 'ingest_with_membership',
    value: sum(meshMs),
    unit: 'ms',
    baseline: sum(plainMs),
    op: '<=',
    target: 1.3,
    on: 'ratio',
  });

  // services --json: pages of the catalog, JSON-encoded, against the raw rows.
  const catalog = () => new Catalog(withMesh, withMesh.membership(), founder.key.did);
  const firstRaw: number[] = [];
  const firstPage: number[] = [];
  for (let round = 0; round < 5; round++) {
    let t = performance.now();
    JSON.stringify(withMesh.viewAll('offers', PAGE));
    firstRaw.push(performance.now() - t);
    t = performance.now();
    const page = catalog().services(undefined, PAGE);
    JSON.stringify({ v: 1, ok: true, result: page });
    firstPage.push(performance.now() - t);
    if (page.rows.length !== PAGE) throw new Error(`first page has ${page.rows.length} rows`);
  }
  const med = (xs: number[]) => summarize(xs).p50;
  r.figure({
    name: 'services_first_page',
    value: med(firstPage),
    unit: 'ms',
    baseline: med(firstRaw),
    op: '<=',
    target: 100,
    on: 'value',
  });
  let t = performance.now();
  let rawRows = 0;
  for (let after: string | undefined; ;) {
    const rows = withMesh.viewAll('offers', PAGE, after);
    JSON.stringify(rows);
    rawRows += rows.length;
    if (rows.length < PAGE) break;
    after = rows[rows.length - 1]![0];
  }
  const wholeRaw = performance.now() - t;
  t = performance.now();
  let rows = 0;
  // One catalog for the whole list, as the journal keeps one until its next commit.
  const listing = catalog();
  for (let after: string | undefined; ;) {
    const page = listing.services(after, PAGE);
    JSON.stringify({ v: 1, ok: true, result: page });
    rows += page.rows.length;
    if (page.next === null) break;
    after = page.next;
  }
  const whole = performance.now() - t;
  if (rows !== NODES * OFFERS_PER_NODE || rawRows !== rows) {
    throw new Error(
      `services listed ${rows} offers (raw ${rawRows}), not ${NODES * OFFERS_PER_NODE}`,
    );
  }
  r.figure({
    name: 'services_whole',
    value: whole,
    unit: 'ms',
    baseline: wholeRaw,
    op: '<=',
    target: 2000,
    on: 'value',
  });
  await plain.close();
  await withMesh.close();
  rmSync(plainDir, { recursive: true, force: true });
  rmSync(meshDir, { recursive: true, force: true });
}

// --- join to visible ------------------------------------------------------------

const DIRECTORY = { announce: true, discover: true, anti_entropy_ms: 1000 };

async function joinToVisible(r: Reporter): Promise<void> {
  const mesh = await TestMesh.start({
    n: MESH_NODES + 1,
    topology: 'none',
    gossip: DIRECTORY,
  });
  try {
    const sups = mesh.nodes.slice(0, MESH_NODES).map((_, i) => mesh.sup(i));
    const founder = sups[0]!;
    await founder.ask('journal', 'found', { name: 'bench', admission: 'closed' });
    for (let i = 1; i < MESH_NODES; i++) {
      const inviter = sups[Math.floor(Math.random() * i)]!;
      await join(sups[i]!, await token(inviter));
    }
    const listed = async (did: string) => {
      for (const s of sups) {
        const page = (await s.ask('journal', 'catalog', { what: 'nodes', limit: 10_000 })) as {
          rows: Array<{ did: string }>;
        };
        if (!page.rows.some((x) => x.did === did)) return false;
      }
      return true;
    };
    // Baseline: an ordinary entry, from one node to all ten.
    const baseline: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      const { id } = (await founder.ask('grants', 'offer', {
        service: `b${i}`,
        port: 2000 + i,
        proto: 'tcp',
        mode: 'auto',
        leaseSeconds: 60,
      })) as { id: string };
      await waitFor(
        async () => {
          for (const s of sups) if ((await s.ask('journal', 'get', { id })) === null) return false;
          return true;
        },
        10_000,
        'an offer on all ten nodes',
        undefined,
        2,
      );
      baseline.push(performance.now() - t);
    }
    // 50 joins, each by a fresh node through a random member.
    const samples: number[] = [];
    const joiner = MESH_NODES;
    for (let k = 0; k < JOINS; k++) {
      if (k > 0) await mesh.restartFresh(joiner);
      const sup = mesh.sup(joiner);
      const tok = await token(sups[Math.floor(Math.random() * MESH_NODES)]!);
      await join(sup, tok);
      const t = performance.now();
      const did = mesh.nodes[joiner]!.did;
      await waitFor(() => listed(did), 10_000, 'the new node listed by all ten', undefined, 2);
      samples.push(performance.now() - t);
    }
    const s = summarize(samples);
    const b = summarize(baseline);
    r.info('join_to_visible', describeSummary(s, 'ms'));
    r.info('entry_to_visible', describeSummary(b, 'ms'));
    r.figure({
      name: 'join_to_visible_p50',
      value: s.p50,
      unit: 'ms',
      baseline: b.p50,
      op: '<=',
      target: 1000,
      on: 'value',
    });
    r.figure({
      name: 'join_to_visible_p99',
      value: s.p99,
      unit: 'ms',
      baseline: b.p99,
      op: '<=',
      target: 1000,
      on: 'value',
    });
  } finally {
    await mesh.stop();
  }
}

async function token(inviter: Supervisor): Promise<string> {
  const r = (await inviter.ask('gossip', 'invite', {
    rights: ['member.invite', 'service.offer'],
  })) as {
    token: string;
  };
  return r.token;
}

async function join(sup: Supervisor, tok: string): Promise<void> {
  await sup.ask('gossip', 'join', { token: tok, timeoutMs: 20_000 }, { timeoutMs: 30_000 });
}

// Last: the classes above must be initialized before the suite runs.
await runSuite('directory', async (r) => {
  // MESHNODE_BENCH_DIRECTORY=join: only the mesh half (the scale half takes a minute to build).
  if (process.env.MESHNODE_BENCH_DIRECTORY !== 'join') await directoryScale(r);
  gc();
  await joinToVisible(r);
});
