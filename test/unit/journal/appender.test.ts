/**
 * The append pipeline on a real store in a temp directory, with a plain
 * promise chain as the journal's write lane: batches of at most MAX_SEAL,
 * chained in order; the batch signed behind a commit that fails is signed
 * again on the stored head (nothing stored on a gap, nothing lost); an
 * oversized append fails alone.
 */
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { Appender, MAX_SEAL } from '../../../actors/journal/appender.js';
import type { AppendRequest, AppendResult } from '../../../actors/journal/appender.js';
import { JournalStore } from '../../../actors/journal/store.js';
import type { CheckedEntry } from '../../../actors/journal/validate.js';
import { verifyJournal } from '../../../actors/journal/verify.js';
import { blake2b256Hex, canonicalize } from '../../../runtime/crypto/index.js';
import { E, MeshError } from '../../../runtime/errors.js';
import { bodies, keyOf } from '../../helpers/journal.js';
import { describe, rejectsWith, tempDir } from '../../helpers/test.js';

const test = describe('journal/appender', 30_000);

interface Rig {
  store: JournalStore;
  appender: Appender;
  /** Entries per commit attempt, in order. */
  commits: number[];
  committed: CheckedEntry[][];
  resealed: number;
  /** Make the next commit wait for `release()`, then fail with `err`. */
  failNext(err: Error): { release: () => void };
}

const open: JournalStore[] = [];
test.afterEach(async () => {
  for (const s of open.splice(0)) await s.close().catch(() => {});
});

async function rig(): Promise<Rig> {
  const store = await JournalStore.open(join(tempDir(), 'journal'));
  open.push(store);
  let lane: Promise<unknown> = Promise.resolve();
  let failing: { gate: Promise<void>; err: Error } | null = null;
  const r: Rig = {
    store,
    commits: [],
    committed: [],
    resealed: 0,
    appender: undefined as unknown as Appender,
    failNext(err) {
      let release!: () => void;
      failing = { gate: new Promise<void>((res) => (release = res)), err };
      return { release };
    },
  };
  // The store's commit, counted, and failing once on demand (after the gate opens).
  const realCommit = store.commit.bind(store);
  store.commit = async (batch, requests) => {
    r.commits.push(batch.length);
    const f = failing;
    if (f) {
      failing = null;
      await f.gate;
      throw f.err;
    }
    return realCommit(batch, requests);
  };
  r.appender = new Appender({
    store,
    key: keyOf(7),
    onLane: <T>(job: () => Promise<T>) => {
      const run = lane.then(job);
      lane = run.catch(() => {});
      return run;
    },
    appendsOnCommitted: (entries) => void r.committed.push([...entries]),
    appendsOnFailed: () => {},
    appendsOnResealed: (n) => void (r.resealed += n),
  });
  return r;
}

function request(i: number, body: Record<string, unknown> = bodies.node(i + 1)): AppendRequest {
  const bodyJson = canonicalize(body);
  return {
    kind: 'node',
    body,
    bodyJson,
    requestId: `r-${i}`,
    digest: blake2b256Hex(new TextEncoder().encode(`node\n${bodyJson}`)),
  };
}

const settle = (ps: Array<Promise<AppendResult>>) => Promise.allSettled(ps);

test('appends in flight are signed in batches of at most MAX_SEAL, chained in order', async () => {
  const r = await rig();
  const N = 2 * MAX_SEAL + 200;
  const acks = await Promise.all(
    Array.from({ length: N }, (_, i) => r.appender.append(request(i))),
  );
  assert.equal(
    acks.map((a) => a.seq),
    Array.from({ length: N }, (_, i) => i + 1),
    'each append its own seq, in the order asked',
  );
  assert.ok(r.commits.length >= 3, `${r.commits.length} commits for ${N} appends`);
  assert.ok(Math.max(...r.commits) <= MAX_SEAL, `batches of ${r.commits.join(', ')}`);
  assert.is(r.resealed, 0);
  assert.equal(await verifyJournal(r.store), { ok: true, feeds: 1, entries: N });
  // Each request record names its own entry.
  acks.forEach((a, i) => assert.is(r.store.request(`r-${i}`)?.id, a.id));
});

test('a batch signed behind a commit that fails is signed again on the stored head', async () => {
  const r = await rig();
  // Two acknowledged first: the stored head the retry must chain onto.
  await r.appender.append(request(0));
  await r.appender.append(request(1));
  const { release } = r.failNext(E.ERR_STORAGE_FULL('test: disk full'));
  const doomed = Array.from({ length: 10 }, (_, i) => r.appender.append(request(100 + i)));
  // Let the doomed batch reach its (held) commit, then queue a batch behind
  // it: it is signed while the doomed one is in flight, chained onto it.
  await new Promise((res) => setImmediate(res));
  await new Promise((res) => setImmediate(res));
  const behind = Array.from({ length: 5 }, (_, i) => r.appender.append(request(200 + i)));
  await new Promise((res) => setTimeout(res, 20));
  release();

  for (const p of doomed) await rejectsWith(p, 'ERR_STORAGE_FULL');
  const acks = (await settle(behind)).map((s) => {
    assert.is(s.status, 'fulfilled', String((s as PromiseRejectedResult).reason));
    return (s as PromiseFulfilledResult<AppendResult>).value;
  });
  assert.is(r.resealed, 5, 'the batch behind was signed again');
  assert.equal(
    acks.map((a) => a.seq),
    [3, 4, 5, 6, 7],
    'it continues from the stored head (2), not from the failed batch',
  );
  assert.equal(await verifyJournal(r.store), { ok: true, feeds: 1, entries: 7 });
  // The retried requestIds of the failed batch are free: they were never stored.
  for (let i = 0; i < 10; i++) assert.is(r.store.request(`r-${100 + i}`), undefined);
});

test('an append over the entry size limit fails alone; its batch-mates are stored', async () => {
  const r = await rig();
  const huge = { ...bodies.node(1), name: 'x'.repeat(20_000) };
  const ps = [0, 1, 2].map((i) => r.appender.append(i === 1 ? request(i, huge) : request(i)));
  const [a, b, c] = await settle(ps);
  assert.is(a!.status, 'fulfilled');
  assert.is(c!.status, 'fulfilled');
  assert.is(b!.status, 'rejected');
  assert.is(((b as PromiseRejectedResult).reason as MeshError).code, 'ERR_TOO_LARGE');
  assert.equal(
    [a, c].map((s) => (s as PromiseFulfilledResult<AppendResult>).value.seq),
    [1, 2],
  );
  assert.is(r.committed.flat().length, 2);
});

test.run();
