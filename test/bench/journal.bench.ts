/**
 * Journal benchmarks (`npm run bench -- journal`). Every figure is compared
 * with a baseline measured in this run:
 *
 *  - append_seq: awaited sequential appends through the actor (ask → durable
 *    ack) vs raw lmdb-js awaited durable puts of the same bytes (>= 0.8), and
 *    vs hypercore's awaited append of same-size blocks (>= 1); info lines
 *    decompose it: JournalStore.commit alone, and the same 6 rows written
 *    with lmdb-js directly, each against the raw put, and the floor: the
 *    commit plus the round trip of an ask that does nothing;
 *  - append_concurrent: 1,000 appends in flight through the actor, >= 15,000
 *    entries/s, and >= 0.7x the same work (sign + store) in a plain loop on
 *    one thread with no actors (see plainLoop for what "the same" means);
 *    3 rounds alternating the two, the round with the median ratio;
 *  - ingest: pre-signed entries from 100 authors through `ingest`, vs pure
 *    signature verification throughput on all cores (piscina), >= 0.7. The
 *    journal stores a batch on each author's last signature (the prev chain
 *    authenticates the rest), so ingest is timed to the last ack (stored,
 *    authenticated), and the signature audit that then checks every other
 *    entry's own signature is a figure of its own, audit_vs_verify, timed
 *    from that ack until `status.unaudited` is 0 (auditIdleMs 1: it starts
 *    at once, and never runs into the baseline's time); the two in a row are
 *    printed as ingest_audited. All three: both
 *    after the same warm-up (whose rates are printed as the cold figure),
 *    the round with the median ratio of rounds that alternate the sides;
 *  - verify_vs_verify: `journal verify` (the job the CLI follows) over
 *    40,000 ingested entries vs pure signature verification of the same
 *    entries on a pool as large, >= 0.7;
 *  - the crypto figures (node:crypto vs noble) from crypto.ts.
 */
import { rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Hypercore from 'hypercore';
import { open } from 'lmdb';
import { Piscina } from 'piscina';
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
import type { CheckedEntry } from '../../actors/journal/validate.js';
import { viewRows } from '../../actors/journal/views.js';
import type { ViewRow } from '../../actors/journal/views.js';
import { generateKeyPair, loadFastHash, sign } from '../../runtime/crypto/index.js';
import type { KeyPair } from '../../runtime/crypto/index.js';
import type { JobState } from '../../runtime/protocol/jobs.js';
import { Supervisor } from '../../supervisor/supervisor.js';
import { nodeInput } from '../helpers/journal.js';
import { tempDir } from '../helpers/test.js';
import { benchCrypto } from './crypto.js';
import { runSuite } from './harness.js';
import type { Reporter } from './harness.js';

/** Sequential appends are fsync-bound; this many give a stable rate in a few seconds. */
const SEQ_N = 400;
const CONCURRENT_N = 20_000;
/** Rounds of the concurrent figures (odd: the figure is the median-ratio round). */
const CONCURRENT_ROUNDS = 3;
const IN_FLIGHT = 1000;
const AUTHORS = 100;
const PER_AUTHOR = 100;
/** Feeds of the ingest warm-up (see ingest): as many entries as one round. */
const WARM_AUTHORS = AUTHORS;
/** Measured ingest rounds (see ingest). */
const INGEST_ROUNDS = 5;
/** The verify figure's journal: 40,000 entries, 200 per feed (see verifyFigure). */
const VERIFY_AUTHORS = 200;
const VERIFY_PER_AUTHOR = 200;
const VERIFY_ROUNDS = 3;
const VERIFY_TASK = fileURLToPath(new URL('./verify-only-task.js', import.meta.url));

// Baselines that seal entries hash them as the journal writer does (runtime/crypto/hash.ts).
await loadFastHash();

await runSuite('journal', async (r) => {
  await benchCrypto(r);
  const sup = await startNode();
  try {
    const { did } = (await sup.ask('journal', 'identity')) as { did: string };
    const body = { provider: did, service: 'ssh' };
    await sequential(r, sup, body);
    await concurrent(r, sup, body);
    await ingest(r, sup);
  } finally {
    await sup.stop('bench over');
  }
  await verifyFigure(r);
});

/**
 * `journal verify` (the job the CLI follows: verifyStart, then `job` asks)
 * over a journal of VERIFY_AUTHORS × VERIFY_PER_AUTHOR ingested entries, vs
 * pure signature verification of the same entries on a pool of as many
 * threads; rounds alternate the sides, the figure is the median-ratio round.
 */
async function verifyFigure(r: Reporter): Promise<void> {
  const sup = await startNode();
  const pool = new Piscina({
    filename: VERIFY_TASK,
    minThreads: availableParallelism(),
    maxThreads: availableParallelism(),
  });
  try {
    const entries = interleaved(VERIFY_AUTHORS, VERIFY_PER_AUTHOR / PER_AUTHOR).flat();
    await ingestAll(sup, entries);
    await audited(sup);
    await verifyAll(pool, entries.slice(0, 5000)); // the baseline's threads started and warm
    const rows: Array<{ verify: number; pure: number }> = [];
    for (let round = 0; round < VERIFY_ROUNDS; round++) {
      const t = performance.now();
      const report = await verifyJob(sup);
      const verify = report.entries / ((performance.now() - t) / 1000);
      if (!report.ok || report.entries < entries.length)
        throw new Error(`verify: ${JSON.stringify(report)}`);
      const p = performance.now();
      await verifyAll(pool, entries);
      rows.push({ verify, pure: entries.length / ((performance.now() - p) / 1000) });
    }
    const mid = [...rows].sort((a, b) => a.verify / a.pure - b.verify / b.pure)[
      (rows.length - 1) >> 1
    ]!;
    r.info(
      'verify_rounds',
      `journal verify ${rows.map((x) => x.verify.toFixed(0)).join(' ')}, pure ${rows.map((x) => x.pure.toFixed(0)).join(' ')} entries/s ` +
        `(${entries.length} entries from ${VERIFY_AUTHORS} authors, ${availableParallelism()} threads each side)`,
    );
    r.figure({
      name: 'verify_vs_verify',
      value: mid.verify,
      unit: 'entries/s',
      baseline: mid.pure,
      op: '>=',
      target: 0.7,
      on: 'ratio',
    });
  } finally {
    await pool.destroy();
    await sup.stop('bench over');
  }
}

/** The verify job, followed as the CLI follows it (a short poll: the bench times its end). */
async function verifyJob(sup: Supervisor): Promise<{ ok: boolean; entries: number }> {
  let s = (await sup.ask('journal', 'verifyStart')) as JobState;
  while (s.state === 'running') {
    await new Promise((res) => setTimeout(res, 10));
    s = (await sup.ask('journal', 'job', { id: s.id })) as JobState;
  }
  if (s.state !== 'done') throw new Error(`verify job ${s.state}: ${JSON.stringify(s.error)}`);
  return s.result as { ok: boolean; entries: number };
}

async function startNode(): Promise<Supervisor> {
  const dir = tempDir('meshnode-bench-');
  // nodeInput: no gossip listener (other nodes on this machine may hold the default port).
  const sup = new Supervisor(
    // The audit runs as soon as ingest pauses, so ingest's figure includes it and it never
    // runs into the baseline's time.
    nodeInput(dir, { actors: { journal: { options: { auditIdleMs: 1 } } } }),
    { logger: pino({ level: 'warn' }) },
  );
  await sup.start();
  return sup;
}

async function sequential(
  r: Reporter,
  sup: Supervisor,
  body: Record<string, unknown>,
): Promise<void> {
  let t = performance.now();
  let last: { id: string } | undefined;
  for (let i = 0; i < SEQ_N; i++) {
    last = (await sup.ask('journal', 'append', {
      kind: 'subscribe',
      body,
      requestId: `s${i}`,
    })) as { id: string };
  }
  const actorRate = SEQ_N / ((performance.now() - t) / 1000);
  const bytes = encodeEntry((await sup.ask('journal', 'get', { id: last!.id })) as Entry);
  // The actor's floor: an ask that does nothing, one at a time, as the appends were.
  t = performance.now();
  for (let i = 0; i < SEQ_N; i++) await sup.ask('journal', 'identity');
  const roundTripMs = (performance.now() - t) / SEQ_N;

  const dir = tempDir('meshnode-bench-raw-');
  const db = open({ path: join(dir, 'raw.mdb') });
  t = performance.now();
  for (let i = 0; i < SEQ_N; i++) await db.put(i, Buffer.from(bytes));
  const rawRate = SEQ_N / ((performance.now() - t) / 1000);
  await db.close();

  const core = new Hypercore(join(dir, 'hypercore'));
  await core.ready();
  t = performance.now();
  for (let i = 0; i < SEQ_N; i++) await core.append(Buffer.from(bytes));
  const hyperRate = SEQ_N / ((performance.now() - t) / 1000);
  await core.close();

  // Where the actor's time goes: the store's commit alone, and the same rows
  // written with lmdb-js directly, both on this thread, awaited one by one.
  const storeRate = await storeCommitRate(dir, body);
  const sixRowsRate = await rawRowsRate(dir, body);
  rmSync(dir, { recursive: true, force: true });

  r.info('append_seq_entry_bytes', `${bytes.length} B per entry`);
  r.info(
    'append_seq_store_commit',
    `${storeRate.toFixed(0)} entries/s, ratio ${(storeRate / rawRate).toFixed(2)} to the raw put ` +
      '(JournalStore.commit of one signed entry and its request record on this thread, no actor)',
  );
  r.info(
    'append_seq_raw_6_rows',
    `${sixRowsRate.toFixed(0)} entries/s, ratio ${(sixRowsRate / rawRate).toFixed(2)} to the raw put ` +
      '(lmdb-js: the same 6 rows in 6 named DBs — entries, ids, arrivals, views, heads, requests — one durable transaction per entry)',
  );
  const floorRate = 1000 / (1000 / storeRate + roundTripMs);
  r.info(
    'append_seq_floor',
    `${floorRate.toFixed(0)} entries/s, ratio ${(floorRate / rawRate).toFixed(2)} to the raw put ` +
      `(the store's commit plus one idle ask round trip, ${(roundTripMs * 1000).toFixed(0)} µs: ` +
      'an append through an actor that did no work of its own)',
  );
  r.figure({
    name: 'append_seq_vs_lmdb',
    value: actorRate,
    unit: 'entries/s',
    baseline: rawRate,
    op: '>=',
    target: 0.8,
    on: 'ratio',
  });
  r.figure({
    name: 'append_seq_vs_hypercore',
    value: actorRate,
    unit: 'entries/s',
    baseline: hyperRate,
    op: '>=',
    target: 1,
    on: 'ratio',
  });
}

/**
 * Sequential awaited JournalStore.commit of one freshly signed entry (kind
 * subscribe, as the actor's figure) with its request record: the actor's
 * append minus the actor (ask, dispatch, group-commit queue).
 */
async function storeCommitRate(dir: string, body: Record<string, unknown>): Promise<number> {
  const store = await JournalStore.open(join(dir, 'store'));
  const key = generateKeyPair();
  let prev: string | null = null;
  const t = performance.now();
  for (let i = 0; i < SEQ_N; i++) {
    const c = sealEntry(signed(key, i + 1, prev, Date.now(), 'subscribe', body));
    prev = c.id;
    await store.commit([c], [[`s${i}`, { id: c.id, digest: c.id }]]);
  }
  const rate = SEQ_N / ((performance.now() - t) / 1000);
  await store.close();
  return rate;
}

/**
 * The rows JournalStore.commit writes for one entry (its bytes, id, arrival,
 * view row, head, request record), in 6 named DBs with the store's key and
 * value encodings, put with lmdb-js directly: one event turn, so one
 * transaction, awaited until durable. Entries are signed in the loop as above.
 */
async function rawRowsRate(dir: string, body: Record<string, unknown>): Promise<number> {
  const root = open({ path: join(dir, 'rows.mdb'), maxDbs: 12 });
  const entries = root.openDB<Buffer, [string, number]>('entries', { encoding: 'binary' });
  const ids = root.openDB<[string, number], string>('ids', {});
  const arrivals = root.openDB<string, number>('arrivals', {});
  const views = root.openDB<Record<string, unknown>, [string, string]>('views', {});
  const heads = root.openDB<{ seq: number; id: string }, string>('heads', {});
  const requests = root.openDB<{ id: string; digest: string }, string>('requests', {});
  const key = generateKeyPair();
  let prev: string | null = null;
  const t = performance.now();
  for (let i = 0; i < SEQ_N; i++) {
    const c = sealEntry(signed(key, i + 1, prev, Date.now(), 'subscribe', body));
    prev = c.id;
    const { author, seq } = c.entry;
    const [[view, viewKey, row]] = viewRows(c) as [ViewRow];
    await Promise.all([
      entries.put([author, seq], Buffer.from(c.bytes)),
      ids.put(c.id, [author, seq]),
      arrivals.put(i + 1, c.id),
      views.put([view, viewKey], row),
      heads.put(author, { seq, id: c.id }),
      requests.put(`s${i}`, { id: c.id, digest: c.id }),
    ]);
  }
  const rate = SEQ_N / ((performance.now() - t) / 1000);
  await root.close();
  return rate;
}

async function concurrent(
  r: Reporter,
  sup: Supervisor,
  body: Record<string, unknown>,
): Promise<void> {
  // Warm up the path (JIT, LMDB map growth) before measuring.
  await inFlight(2000, (i) =>
    sup.ask('journal', 'append', { kind: 'subscribe', body, requestId: `w${i}` }),
  );
  // Rounds alternate the actor and the loop, so a burst of load elsewhere on
  // the machine hits both sides of a pair; the figures are the round with
  // the median ratio (odd number of rounds), as in the ingest figures.
  const rounds: Array<{ actor: number; loop: number }> = [];
  for (let round = 0; round < CONCURRENT_ROUNDS; round++) {
    const t = performance.now();
    await inFlight(CONCURRENT_N, (i) =>
      sup.ask('journal', 'append', { kind: 'subscribe', body, requestId: `c${round}-${i}` }),
    );
    const actor = CONCURRENT_N / ((performance.now() - t) / 1000);
    rounds.push({ actor, loop: await plainLoop(body) });
  }
  await bareSignPut(r, body);
  r.info(
    'append_concurrent_rounds',
    `actor ${rounds.map((x) => x.actor.toFixed(0)).join(' ')}, loop ${rounds.map((x) => x.loop.toFixed(0)).join(' ')} entries/s`,
  );
  const mid = [...rounds].sort((x, y) => x.actor / x.loop - y.actor / y.loop)[
    (rounds.length - 1) >> 1
  ]!;
  r.figure({
    name: 'append_concurrent',
    value: mid.actor,
    unit: 'entries/s',
    baseline: mid.loop,
    op: '>=',
    target: 15_000,
    on: 'value',
  });
  r.figure({
    name: 'append_concurrent_vs_loop',
    value: mid.actor,
    unit: 'entries/s',
    baseline: mid.loop,
    op: '>=',
    target: 0.7,
    on: 'ratio',
  });
}

/**
 * The same work with no actors, in a plain loop on this thread: build, sign,
 * encode and id each entry, and store it exactly as the journal does (the
 * entry with its id, arrival, view, head and request rows), one transaction
 * per 1,000 entries as the group commit makes under this load. The ratio is
 * then what the actor machinery costs.
 */
async function plainLoop(body: Record<string, unknown>): Promise<number> {
  const dir = tempDir('meshnode-bench-loop-');
  const store = await JournalStore.open(join(dir, 'journal'));
  const key = generateKeyPair();
  let prev: string | null = null;
  const t = performance.now();
  for (let start = 0; start < CONCURRENT_N; start += IN_FLIGHT) {
    const batch: CheckedEntry[] = [];
    for (let i = start; i < Math.min(start + IN_FLIGHT, CONCURRENT_N); i++) {
      const c = sealEntry(signed(key, i + 1, prev, Date.now(), 'subscribe', body));
      prev = c.id;
      batch.push(c);
    }
    await store.commit(
      batch,
      batch.map((c, i) => [`loop${start + i}`, { id: c.id, digest: c.id }]),
    );
  }
  const rate = CONCURRENT_N / ((performance.now() - t) / 1000);
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return rate;
}

/** Information beside the loop: sign + one raw put per entry, no indexes. */
async function bareSignPut(r: Reporter, body: Record<string, unknown>): Promise<void> {
  const dir = tempDir('meshnode-bench-bare-');
  const db = open({ path: join(dir, 'bare.mdb') });
  const key = generateKeyPair();
  let prev: string | null = null;
  const t = performance.now();
  await inFlight(CONCURRENT_N, (i) => {
    const bytes = encodeEntry(signed(key, i + 1, prev, Date.now(), 'subscribe', body));
    prev = entryId(bytes);
    return db.put(i, Buffer.from(bytes));
  });
  r.info(
    'append_bare_sign_put',
    `${(CONCURRENT_N / ((performance.now() - t) / 1000)).toFixed(0)} entries/s (sign + one put per entry, no indexes)`,
  );
  await db.close();
  rmSync(dir, { recursive: true, force: true });
}

async function ingest(r: Reporter, sup: Supervisor): Promise<void> {
  const [warm] = interleaved(WARM_AUTHORS, 1);
  const rounds = interleaved(AUTHORS, INGEST_ROUNDS);
  const pool = new Piscina({
    filename: VERIFY_TASK,
    minThreads: availableParallelism(),
    maxThreads: availableParallelism(),
  });

  // Warm-up, the same for both sides: as many other entries as one round go
  // through the journal's ingest, and the same ones through the baseline's
  // pool, before either clock starts. Each side has then started its threads,
  // loaded its modules and compiled its hot code, so the figure compares
  // steady states (a gossiping node ingests all day). A fresh pool still
  // compiles through its first thousands of entries, and functions that run
  // once per batch (commit, the chunk task) get optimized only after several
  // batches: the warm-up's own rates are printed as the cold figure.
  let w = performance.now();
  await ingestAll(sup, warm!);
  await audited(sup);
  const coldIngest = warm!.length / ((performance.now() - w) / 1000);
  w = performance.now();
  await verifyAll(pool, warm!);
  const coldVerify = warm!.length / ((performance.now() - w) / 1000);
  r.info(
    'ingest_cold',
    `${coldIngest.toFixed(0)} entries/s vs ${coldVerify.toFixed(0)} entries/s pure verify, ratio ${(coldIngest / coldVerify).toFixed(2)} ` +
      `(the warm-up: the first ${warm!.length} entries through a fresh pool on each side)`,
  );

  // Rounds alternate the two sides on the same entries (each round the next
  // PER_AUTHOR entries of every feed), so a burst of load elsewhere on the
  // machine hits both sides of a pair; the figure is the pair with the median
  // ratio (odd number of rounds), as in the runtime suite.
  const rows: Array<{ ingest: number; audit: number; both: number; verify: number }> = [];
  for (const entries of rounds) {
    const t = performance.now();
    await ingestAll(sup, entries);
    const stored = performance.now();
    await audited(sup);
    const done = performance.now();
    const rate = (ms: number) => entries.length / (ms / 1000);
    const v0 = performance.now();
    const verdicts = await verifyAll(pool, entries);
    const verify = rate(performance.now() - v0);
    if (verdicts.some((v) => !v)) throw new Error('a pre-signed entry failed verification');
    rows.push({
      ingest: rate(stored - t),
      audit: rate(done - stored),
      both: rate(done - t),
      verify,
    });
  }
  await pool.destroy();
  const list = (pick: (x: (typeof rows)[number]) => number) =>
    rows.map((x) => pick(x).toFixed(0)).join(' ');
  r.info(
    'ingest_rounds',
    `ingest ${list((x) => x.ingest)}, audit ${list((x) => x.audit)}, ` +
      `verify ${list((x) => x.verify)} entries/s ` +
      `(rounds of ${rounds[0]!.length} entries from ${AUTHORS} authors)`,
  );
  // Each figure is the round with its median ratio (odd number of rounds), as in the runtime suite.
  const median = (pick: (x: (typeof rows)[number]) => number) =>
    [...rows].sort((x, y) => pick(x) / x.verify - pick(y) / y.verify)[(rows.length - 1) >> 1]!;
  const both = median((x) => x.both);
  r.info(
    'ingest_audited',
    `ingest then audit, in a row: ${both.both.toFixed(0)} entries/s vs ${both.verify.toFixed(0)} pure verify, ratio ${(both.both / both.verify).toFixed(2)}`,
  );
  for (const [name, pick] of [
    ['ingest_vs_verify', (x: (typeof rows)[number]) => x.ingest],
    ['audit_vs_verify', (x: (typeof rows)[number]) => x.audit],
  ] as const) {
    const mid = median(pick);
    r.figure({
      name,
      value: pick(mid),
      unit: 'entries/s',
      baseline: mid.verify,
      op: '>=',
      target: 0.7,
      on: 'ratio',
    });
  }
}

/**
 * `authors` new feeds of `rounds` × PER_AUTHOR entries, cut into rounds of
 * PER_AUTHOR entries per feed, each round interleaving the authors as gossip
 * would deliver them.
 */
function interleaved(authors: number, rounds: number): Entry[][] {
  const feeds = Array.from({ length: authors }, () =>
    makeFeed(generateKeyPair(), PER_AUTHOR * rounds),
  );
  return Array.from({ length: rounds }, (_, round) => {
    const out: Entry[] = [];
    for (let seq = round * PER_AUTHOR; seq < (round + 1) * PER_AUTHOR; seq++)
      for (const f of feeds) out.push(f[seq]!);
    return out;
  });
}

/**
 * Ingest in batches of up to 1,000 entries, in order (each extends the feeds
 * of the one before); the next is handed over without waiting for the
 * previous one's ack, as a gossip peer keeps a few batches in flight. The
 * journal applies them in order.
 */
async function ingestAll(sup: Supervisor, entries: Entry[]): Promise<void> {
  const batches: Entry[][] = [];
  for (let i = 0; i < entries.length; i += 1000) batches.push(entries.slice(i, i + 1000));
  await Promise.all(
    batches.map((b) => sup.ask('journal', 'ingest', { entries: b }, { timeoutMs: 60_000 })),
  );
}

/** Until the signature audit has checked every entry's own signature. */
async function audited(sup: Supervisor): Promise<void> {
  while (((await sup.ask('journal', 'status')) as { unaudited: number }).unaudited > 0) {
    await new Promise((res) => setTimeout(res, 2));
  }
}

/** The baseline: signature checks alone, in 8 chunks per thread on all cores. */
async function verifyAll(pool: Piscina, entries: Entry[]): Promise<boolean[]> {
  const chunk = Math.ceil(entries.length / (availableParallelism() * 8));
  const tasks: Promise<boolean[]>[] = [];
  for (let i = 0; i < entries.length; i += chunk)
    tasks.push(pool.run(entries.slice(i, i + chunk)) as Promise<boolean[]>);
  return (await Promise.all(tasks)).flat();
}

function makeFeed(key: KeyPair, n: number): Entry[] {
  const out: Entry[] = [];
  let prev: string | null = null;
  for (let seq = 1; seq <= n; seq++) {
    const entry = signed(key, seq, prev, 1_700_000_000_000 + seq, 'node', {
      name: `n${seq % 10}`,
      gossip: 'ws://127.0.0.1:7300',
      meshIp: '10.0.0.1',
    });
    prev = entryId(encodeEntry(entry));
    out.push(entry);
  }
  return out;
}

/** A signed entry of `key`'s feed. */
function signed(
  key: KeyPair,
  seq: number,
  prev: string | null,
  ts: number,
  kind: UnsignedEntry['kind'],
  body: Record<string, unknown>,
): Entry {
  const unsigned: UnsignedEntry = { v: ENTRY_VERSION, author: key.did, seq, prev, ts, kind, body };
  return { ...unsigned, sig: sigToString(sign(key, signingBytes(unsigned))) };
}

/** Run `total` operations with at most IN_FLIGHT pending. */
async function inFlight(total: number, op: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < total) await op(next++);
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
}
