/**
 * `journal verify` on the pool (actors/journal/verify.ts) over a real store:
 * a sound journal of many feeds across chunk boundaries, each kind of
 * finding at the entry where it is (bad signature, broken prev link, a
 * missing entry, a wrong id index), progress that counts every entry, and
 * a cancel that stops it.
 */
import { join } from 'node:path';
import { open } from 'lmdb';
import * as assert from 'uvu/assert';
import { JournalStore } from '../../../actors/journal/store.js';
import { verifyJournal } from '../../../actors/journal/verify.js';
import { VerifyPool } from '../../../actors/journal/verify-pool.js';
import { E } from '../../../runtime/errors.js';
import { Feed, checked, fakeId, keyOf, signWith } from '../../helpers/journal.js';
import { describe, rejectsWith, tempDir } from '../../helpers/test.js';

const test = describe('journal/verify', 60_000);

const pool = new VerifyPool();
const stores: JournalStore[] = [];
test.after(async () => {
  for (const s of stores) await s.close().catch(() => {});
  await pool.destroy();
});

/** A store holding `feeds`, committed as they are (the store trusts its writer). */
async function storeOf(...feeds: Feed[]): Promise<{ dir: string; store: JournalStore }> {
  const dir = tempDir();
  const store = await JournalStore.open(dir);
  for (const f of feeds) await store.commit(f.entries.map(checked), []);
  stores.push(store);
  return { dir, store };
}

test('a sound journal of many feeds, cut across feeds and chunks, verifies whole', async () => {
  // 40 feeds of 60 entries: 2,400 entries, chunks of 1,000 that end mid-feed.
  const feeds = Array.from({ length: 40 }, (_, i) => new Feed(keyOf(i + 1)));
  for (const f of feeds) f.fill(60);
  const { store } = await storeOf(...feeds);
  const seen: Array<[number, number]> = [];
  const report = await verifyJournal(store, { pool, progress: (d, t) => seen.push([d, t]) });
  assert.equal(report, { ok: true, feeds: 40, entries: 2400 });
  assert.equal(seen[0], [0, 2400], 'progress starts at 0 of the total');
  assert.equal(seen.at(-1), [2400, 2400], 'and ends at the total');
  assert.ok(
    seen.every(([d], i) => i === 0 || d >= seen[i - 1]![0]),
    'progress never goes back',
  );
});

test('a bad signature is found at its entry, the feeds before it counted', async () => {
  const a = new Feed(keyOf(1));
  a.fill(5);
  const b = new Feed(keyOf(2));
  b.fill(2);
  b.pushForged(keyOf(9), 'node', { name: 'x', gossip: 'ws://10.0.0.1:7000', meshIp: '10.99.0.1' });
  b.fill(3);
  const { store } = await storeOf(a, b);
  const report = await verifyJournal(store, { pool });
  const [first] = [a, b].map((f) => f.did).sort();
  const bad = b.did;
  assert.is(report.ok, false);
  if (report.ok) return;
  assert.is(report.code, 'ERR_BAD_SIGNATURE');
  assert.is(report.author, bad);
  assert.is(report.seq, 3);
  // Whatever order the feeds sort in, what was checked before the finding is counted.
  assert.is(report.entries, first === bad ? 2 : 5 + 2);
});

test('an entry whose prev is not the entry before it: ERR_PREV_MISMATCH at that seq', async () => {
  const a = new Feed(keyOf(3));
  a.fill(3);
  const broken = signWith(a.key, {
    v: 1,
    author: a.did,
    seq: 4,
    prev: fakeId(7),
    ts: 1_700_000_000_004,
    kind: 'node',
    body: { name: 'n4', gossip: 'ws://10.0.0.4:7000', meshIp: '10.99.0.4' },
  });
  a.entries.push(broken);
  const { store } = await storeOf(a);
  const report = await verifyJournal(store, { pool });
  assert.is(report.ok, false);
  if (!report.ok) assert.equal([report.code, report.seq], ['ERR_PREV_MISMATCH', 4]);
});

test('a missing stored entry is ERR_SEQ_GAP; an id index pointing elsewhere is reported', async () => {
  const a = new Feed(keyOf(4));
  a.fill(6);
  const { dir, store } = await storeOf(a);
  await store.close();
  stores.splice(stores.indexOf(store), 1);
  // Damage the file itself, as a disk or a hand would; verify what is left, read-only.
  const damaged = async (edit: (raw: ReturnType<typeof open>) => Promise<unknown>) => {
    const raw = open({ path: join(dir, 'journal.mdb'), maxDbs: 12 });
    await edit(raw);
    await raw.close();
    const s = await JournalStore.open(dir, { readOnly: true });
    try {
      return await verifyJournal(s, { pool });
    } finally {
      await s.close();
    }
  };
  const report = await damaged(async (raw) => {
    await raw.openDB('entries', { encoding: 'binary' }).remove([a.did, 4]);
    await raw.openDB('ids', {}).put(a.idAt(2), [a.did, 5]);
  });
  assert.is(report.ok, false);
  // The id index of seq 2 comes first in the feed.
  if (!report.ok) assert.equal([report.code, report.seq], ['ERR_MALFORMED_ENTRY', 2]);
  const gap = await damaged((raw) => raw.openDB('ids', {}).put(a.idAt(2), [a.did, 2]));
  assert.is(gap.ok, false);
  if (!gap.ok) assert.equal([gap.code, gap.seq, gap.entries], ['ERR_SEQ_GAP', 4, 3]);
});

test('appends while it runs: it verifies the journal as of its start, and passes', async () => {
  const feeds = Array.from({ length: 4 }, (_, i) => new Feed(keyOf(60 + i)));
  for (const f of feeds) f.fill(800);
  const { store } = await storeOf(...feeds);
  const run = verifyJournal(store, { pool });
  // The feeds grow under it (the node appends and ingests during a verify).
  for (const f of feeds) {
    const more = f.fill(50);
    await store.commit(more.map(checked), []);
  }
  assert.equal(await run, { ok: true, feeds: 4, entries: 3200 });
  assert.equal(await verifyJournal(store, { pool }), { ok: true, feeds: 4, entries: 3400 });
});

test('cancelled, it stops with the abort reason and checks no more', async () => {
  const feeds = Array.from({ length: 8 }, (_, i) => new Feed(keyOf(20 + i)));
  for (const f of feeds) f.fill(500);
  const { store } = await storeOf(...feeds);
  const abort = new AbortController();
  let last = 0;
  const run = verifyJournal(store, {
    pool,
    signal: abort.signal,
    progress: (done) => {
      last = done;
      if (done > 0) abort.abort(E.ERR_CANCELLED('test'));
    },
  });
  await rejectsWith(run, 'ERR_CANCELLED');
  assert.ok(last > 0 && last < 4000, `stopped part-way (${last} of 4000)`);
});

test.run();
