/**
 * Journal benchmarks (`npm run bench -- journal`). Every figure is compared
 * with a baseline measured in this run:
 *
 *  - append_seq: awaited sequential appends through the actor (ask → durable
 *    ack) vs raw lmdb-js awaited durable puts of the same bytes (>= 0.8), and
 *    vs hypercore's awaited append of same-size blocks (>= 1);
 *  - append_concurrent: 1,000 appends in flight through the actor, >= 15,000
 *    entries/s, and >= 0.7x the same work (sign + store) in a plain loop on
 *    one thread with no actors (see plainLoop for what "the same" means);
 *  - ingest: pre-signed entries from 100 authors through `ingest`, vs pure
 *    signature verification throughput on all cores (piscina), >= 0.7;
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
} from '../../actors/journal/codec.js';
import type { Entry, UnsignedEntry } from '../../actors/journal/codec.js';
import { JournalStore } from '../../actors/journal/store.js';
import { sealEntry } from '../../actors/journal/validate.js';
import type { CheckedEntry } from '../../actors/journal/validate.js';
import { generateKeyPair, sign } from '../../runtime/crypto/index.js';
import type { KeyPair } from '../../runtime/crypto/index.js';
import { parseConfig, supervisorInput } from '../../supervisor/config.js';
import { Supervisor } from '../../supervisor/supervisor.js';
import { tempDir } from '../helpers/test.js';
import { benchCrypto } from './crypto.js';
import { runSuite } from './harness.js';
import type { Reporter } from './harness.js';

/** Sequential appends are fsync-bound; this many give a stable rate in a few seconds. */
const SEQ_N = 400;
const CONCURRENT_N = 20_000;
const IN_FLIGHT = 1000;
const AUTHORS = 100;
const PER_AUTHOR = 100;
const VERIFY_TASK = fileURLToPath(new URL('./verify-only-task.js', import.meta.url));

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
});

async function startNode(): Promise<Supervisor> {
  const dir = tempDir('meshnode-bench-');
  const sup = new Supervisor(
    supervisorInput(
      parseConfig({ node: { state_dir: dir, log_level: 'warn' }, metrics: { listen: '' } }),
    ),
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
  rmSync(dir, { recursive: true, force: true });

  r.info('append_seq_entry_bytes', `${bytes.length} B per entry`);
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

async function concurrent(
  r: Reporter,
  sup: Supervisor,
  body: Record<string, unknown>,
): Promise<void> {
  // Warm up the path (JIT, LMDB map growth) before measuring.
  await inFlight(2000, (i) =>
    sup.ask('journal', 'append', { kind: 'subscribe', body, requestId: `w${i}` }),
  );
  const t = performance.now();
  await inFlight(CONCURRENT_N, (i) =>
    sup.ask('journal', 'append', { kind: 'subscribe', body, requestId: `c${i}` }),
  );
  const actorRate = CONCURRENT_N / ((performance.now() - t) / 1000);
  const loopRate = await plainLoop(r, body);
  r.figure({
    name: 'append_concurrent',
    value: actorRate,
    unit: 'entries/s',
    baseline: loopRate,
    op: '>=',
    target: 15_000,
    on: 'value',
  });
  r.figure({
    name: 'append_concurrent_vs_loop',
    value: actorRate,
    unit: 'entries/s',
    baseline: loopRate,
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
 * then what the actor machinery costs. The bare "sign + one put per entry"
 * rate is printed beside it as information.
 */
async function plainLoop(r: Reporter, body: Record<string, unknown>): Promise<number> {
  const dir = tempDir('meshnode-bench-loop-');
  const store = await JournalStore.open(join(dir, 'journal'));
  const key = generateKeyPair();
  let prev: string | null = null;
  let t = performance.now();
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

  const db = open({ path: join(dir, 'bare.mdb') });
  prev = null;
  t = performance.now();
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
  return rate;
}

async function ingest(r: Reporter, sup: Supervisor): Promise<void> {
  const feeds = Array.from({ length: AUTHORS }, () => makeFeed(generateKeyPair(), PER_AUTHOR));
  // Batches of up to 1,000 entries, interleaving authors as gossip would deliver them.
  const all: Entry[] = [];
  for (let seq = 0; seq < PER_AUTHOR; seq++) for (const f of feeds) all.push(f[seq]!);
  const batches: Entry[][] = [];
  for (let i = 0; i < all.length; i += 1000) batches.push(all.slice(i, i + 1000));

  // Warm-up, not measured: the journal starts its verification pool on the
  // first large batch (threads, module loading), as the baseline's pool is
  // started before its clock too.
  const warm = Array.from({ length: 4 }, () => makeFeed(generateKeyPair(), 100)).flat();
  await sup.ask('journal', 'ingest', { entries: warm }, { timeoutMs: 60_000 });
  // Batches go in order (each extends the feeds of the one before); the next
  // is handed over without waiting for the previous one's ack, as a gossip
  // peer keeps a few batches in flight. The journal applies them in order.
  const t = performance.now();
  await Promise.all(
    batches.map((b) => sup.ask('journal', 'ingest', { entries: b }, { timeoutMs: 60_000 })),
  );
  const ingestRate = all.length / ((performance.now() - t) / 1000);

  const pool = new Piscina({
    filename: VERIFY_TASK,
    minThreads: availableParallelism(),
    maxThreads: availableParallelism(),
  });
  await pool.run(all.slice(0, 10)); // threads up
  const v0 = performance.now();
  const threads = availableParallelism();
  const chunk = Math.ceil(all.length / (threads * 8));
  const tasks: Promise<boolean[]>[] = [];
  for (let i = 0; i < all.length; i += chunk)
    tasks.push(pool.run(all.slice(i, i + chunk)) as Promise<boolean[]>);
  const verdicts = (await Promise.all(tasks)).flat();
  const verifyRate = all.length / ((performance.now() - v0) / 1000);
  await pool.destroy();
  if (verdicts.some((v) => !v)) throw new Error('a pre-signed entry failed verification');
  r.figure({
    name: 'ingest_vs_verify',
    value: ingestRate,
    unit: 'entries/s',
    baseline: verifyRate,
    op: '>=',
    target: 0.7,
    on: 'ratio',
  });
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
