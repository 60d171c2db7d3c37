/**
 * The journal's LMDB store on a real environment in a temp directory:
 * commits and every read, atomic batches, the read-only handle, kept
 * equivocation proofs, state views that converge whatever the arrival order,
 * and the on-disk format guard.
 */
import { join } from 'node:path';
import { open } from 'lmdb';
import * as assert from 'uvu/assert';
import { MAX_RANGE, STORE_FORMAT, JournalStore } from '../../../actors/journal/store.js';
import type { Entry } from '../../../runtime/domain/codec.js';
import { encodeEntry } from '../../../runtime/domain/codec.js';
import type { CheckedEntry } from '../../../actors/journal/validate.js';
import { VIEWS } from '../../../actors/journal/views.js';
import { verifyJournal } from '../../../actors/journal/verify.js';
import { Feed, bodies, checked, keyOf } from '../../helpers/journal.js';
import { describe, rejectsWith, tempDir, until } from '../../helpers/test.js';

const test = describe('journal/store', 20_000);

const open_: JournalStore[] = [];
/** Open a store (closed after each test). */
async function openStore(dir: string, readOnly = false): Promise<JournalStore> {
  const s = await JournalStore.open(dir, { readOnly });
  open_.push(s);
  return s;
}
test.afterEach(async () => {
  for (const s of open_.splice(0)) await s.close().catch(() => {});
});

const commit = (
  s: JournalStore,
  entries: Entry[],
  requests: Array<[string, { id: string; digest: string }]> = [],
) => s.commit(entries.map(checked), requests);

test('a new store is empty', async () => {
  const s = await openStore(join(tempDir(), 'journal'));
  assert.equal(s.versionVector(), {});
  assert.is(s.count(), 0);
  assert.equal(s.tail(), []);
  assert.equal(s.equivocations(), []);
  assert.is(s.head(keyOf(1).did), undefined);
});

test('commit, then every read: head, versionVector, get, getBytes, idAt, byId, count', async () => {
  const s = await openStore(tempDir());
  const a = new Feed(keyOf(1));
  const b = new Feed(keyOf(2));
  a.fill(3);
  b.fill(2);
  await commit(s, [...a.entries, ...b.entries]);
  assert.equal(s.head(a.did), { seq: 3, id: a.idAt(3) });
  assert.equal(s.versionVector(), { [a.did]: 3, [b.did]: 2 });
  assert.is(s.count(), 5);
  for (const f of [a, b]) {
    f.entries.forEach((e, i) => {
      assert.equal(s.get(f.did, i + 1), e);
      assert.equal(new Uint8Array(s.getBytes(f.did, i + 1)!), encodeEntry(e));
      assert.is(s.idAt(f.did, i + 1), f.idAt(i + 1));
      assert.equal(s.byId(f.idAt(i + 1)), e);
    });
  }
  assert.is(s.get(a.did, 4), undefined);
  assert.is(s.byId('0'.repeat(64)), undefined);
});

test('requests committed with the batch are kept', async () => {
  const s = await openStore(tempDir());
  const a = new Feed(keyOf(1));
  a.fill(2);
  await commit(s, a.entries, [
    ['req-1', { id: a.idAt(1), digest: 'd1' }],
    ['req-2', { id: a.idAt(2), digest: 'd2' }],
  ]);
  assert.equal(s.request('req-1'), { id: a.idAt(1), digest: 'd1' });
  assert.equal(s.request('req-2'), { id: a.idAt(2), digest: 'd2' });
  assert.is(s.request('req-3'), undefined);
});

test('range: from/to inclusive, limit, capped at MAX_RANGE, one author only', async () => {
  const s = await openStore(tempDir());
  const a = new Feed(keyOf(1));
  const b = new Feed(keyOf(2));
  a.fill(MAX_RANGE + 50);
  b.fill(3);
  await commit(s, [...b.entries, ...a.entries]);
  const seqs = (es: Entry[]) => es.map((e) => e.seq);
  assert.equal(seqs(s.range(a.did, 5, 9)), [5, 6, 7, 8, 9]);
  assert.equal(seqs(s.range(a.did, 5, 9, 2)), [5, 6]);
  assert.equal(seqs(s.range(b.did, 1)), [1, 2, 3], 'no bleed into the next author');
  assert.equal(seqs(s.range(b.did, 3, 100)), [3]);
  assert.equal(s.range(b.did, 4), []);
  assert.equal(s.range(keyOf(3).did, 1), []);
  assert.is(s.range(a.did, 1).length, MAX_RANGE);
  assert.is(s.range(a.did, 1, Number.MAX_SAFE_INTEGER, 10 * MAX_RANGE).length, MAX_RANGE);
  assert.equal(
    seqs(s.range(a.did, MAX_RANGE + 1)),
    Array.from({ length: 50 }, (_, i) => MAX_RANGE + 1 + i),
  );
  assert.equal(s.range(a.did, 7, 7), [a.at(7)]);
});

test('tail: local arrival order across commits, after/limit, numbering continues after reopen', async () => {
  const dir = tempDir();
  let s = await openStore(dir);
  const a = new Feed(keyOf(1));
  const b = new Feed(keyOf(2));
  a.fill(3);
  b.fill(3);
  await commit(s, [b.at(1), a.at(1)]);
  await commit(s, [a.at(2), b.at(2)]);
  const t = s.tail();
  assert.equal(
    t.map((x) => x.arrival),
    [1, 2, 3, 4],
  );
  assert.equal(
    t.map((x) => x.id),
    [b.idAt(1), a.idAt(1), a.idAt(2), b.idAt(2)],
  );
  assert.equal(t[1]!.entry, a.at(1));
  assert.equal(
    s.tail(2).map((x) => x.arrival),
    [3, 4],
  );
  assert.equal(
    s.tail(0, 1).map((x) => x.arrival),
    [1],
  );
  await s.close();
  s = await openStore(dir);
  await commit(s, [a.at(3), b.at(3)]);
  assert.equal(
    s.tail(4).map((x) => [x.arrival, x.id]),
    [
      [5, a.idAt(3)],
      [6, b.idAt(3)],
    ],
  );
  assert.equal(s.versionVector(), { [a.did]: 3, [b.did]: 3 });
});

test('commits survive close and reopen (writer state is reloaded from disk)', async () => {
  const dir = tempDir();
  const s = await openStore(dir);
  const a = new Feed(keyOf(1));
  a.fill(4);
  await commit(s, a.entries.slice(0, 2));
  await commit(s, a.entries.slice(2));
  await s.close();
  const again = await openStore(dir);
  assert.equal(again.head(a.did), { seq: 4, id: a.idAt(4) });
  assert.equal(again.range(a.did, 1), a.entries);
  assert.equal(await verifyJournal(again), { ok: true, feeds: 1, entries: 4 });
});

/**
 * A checked entry whose [author, seq] key LMDB cannot store (keys are at most
 * 1978 bytes): a write that fails in the middle of the batch's transaction.
 * The store trusts its caller's checks, so this is how a mid-transaction
 * failure (map full, I/O error) is injected without mocks.
 */
function unstorable(base: CheckedEntry): CheckedEntry {
  return { ...base, entry: { ...base.entry, author: 'x'.repeat(3000) } };
}

test('a batch that fails half-way stores nothing of itself: entries, ids, arrivals, views, heads', async () => {
  const dir = tempDir();
  const s = await openStore(dir);
  const a = new Feed(keyOf(1));
  a.fill(1);
  await commit(s, [a.at(1)]);
  const b = new Feed(keyOf(2));
  b.push('node', bodies.node(2));
  b.push('offer', bodies.offer('db', 5432));
  const batch = [checked(a.push('node', bodies.node(9))), ...b.entries.map(checked)];
  await rejectsWith(
    s.commit([...batch, unstorable(batch[0]!)], [['req-x', { id: b.idAt(1), digest: 'x' }]]),
    'ERR_STORAGE',
  );
  const check = (st: JournalStore, when: string) => {
    assert.equal(st.versionVector(), { [a.did]: 1 }, `${when}: heads`);
    assert.is(st.count(), 1, `${when}: entries stored`);
    assert.is(st.get(a.did, 2), undefined, `${when}: a#2`);
    assert.is(st.byId(b.idAt(1)), undefined, `${when}: id index`);
    assert.is(st.view('nodes', b.did), undefined, `${when}: nodes view`);
    assert.equal(st.viewAll('offers'), [], `${when}: offers view`);
    assert.is(st.request('req-x'), undefined, `${when}: request record`);
    assert.equal(
      st.tail().map((x) => x.id),
      [a.idAt(1)],
      `${when}: arrivals`,
    );
  };
  check(s, 'after the failure');
  // The writer goes on where it was: the same entries commit cleanly.
  await s.commit(batch);
  assert.equal(
    s.tail().map((x) => x.arrival),
    [1, 2, 3, 4],
  );
  await s.close();
  const again = await openStore(dir);
  assert.equal(await verifyJournal(again), { ok: true, feeds: 2, entries: 4 });
});

test('a commit on a read-only handle is ERR_READ_ONLY and stores nothing', async () => {
  const dir = tempDir();
  const w = await openStore(dir);
  const a = new Feed(keyOf(1));
  a.fill(2);
  await commit(w, [a.at(1)]);
  const r = await openStore(dir, true);
  assert.ok(r.readOnly);
  await rejectsWith(commit(r, [a.at(2)]), 'ERR_READ_ONLY');
  await rejectsWith(
    r.recordEquivocation(a.did, 1, new Uint8Array(1), new Uint8Array(1)),
    'ERR_READ_ONLY',
  );
  assert.is(w.count(), 1);
  assert.equal(r.versionVector(), { [a.did]: 1 });
  assert.not.ok(r.isBlocked(a.did));
});

test('a commit on a closed handle is refused with a storage error code and stores nothing', async () => {
  const dir = tempDir();
  const s = await openStore(dir);
  const a = new Feed(keyOf(1));
  a.fill(2);
  await commit(s, [a.at(1)]);
  await s.close();
  await rejectsWith(commit(s, [a.at(2)]), 'ERR_STORAGE');
  const again = await openStore(dir);
  assert.equal(again.versionVector(), { [a.did]: 1 });
  assert.is(again.count(), 1);
});

test('a read-only handle sees what the writer committed, before and after it opened', async () => {
  const dir = tempDir();
  const w = await openStore(dir);
  const a = new Feed(keyOf(1));
  a.push('node', bodies.node(1));
  a.push('offer', bodies.offer());
  a.push('node', bodies.node(3));
  await commit(w, a.entries.slice(0, 2), [['r1', { id: a.idAt(1), digest: 'd' }]]);
  const r = await openStore(dir, true);
  assert.equal(r.head(a.did), { seq: 2, id: a.idAt(2) });
  assert.equal(r.versionVector(), { [a.did]: 2 });
  assert.equal(r.byId(a.idAt(2)), a.at(2));
  assert.equal(r.request('r1'), { id: a.idAt(1), digest: 'd' });
  assert.ok(r.view('offers', a.idAt(2)));
  await commit(w, [a.at(3)]);
  // A reader sees a snapshot: lmdb-js renews it soon after a commit (in
  // another thread at once; in the writer's own thread within a few ms).
  await until(() => r.head(a.did)?.seq === 3, 2000, 'the read-only handle to see seq 3');
  assert.equal(r.head(a.did), { seq: 3, id: a.idAt(3) });
  assert.equal(r.versionVector(), { [a.did]: 3 });
  assert.equal(r.get(a.did, 3), a.at(3));
  assert.equal(
    r.tail().map((x) => x.id),
    a.ids,
  );
  assert.is(r.count(), 3);
  assert.equal(r.view('nodes', a.did)?.seq, 3);
  assert.equal(await verifyJournal(r), { ok: true, feeds: 1, entries: 3 });
});

test('recordEquivocation keeps both signed entries and stops the feed, across reopen', async () => {
  const dir = tempDir();
  let s = await openStore(dir);
  const a = new Feed(keyOf(1));
  a.fill(2);
  const b = new Feed(keyOf(2));
  b.fill(1);
  await commit(s, [...a.entries, ...b.entries]);
  const twin = new Feed(keyOf(1));
  twin.push('node', bodies.node(1));
  const other2 = twin.push('offer', bodies.offer());
  await s.recordEquivocation(a.did, 2, encodeEntry(a.at(2)), encodeEntry(other2));
  const assertProof = (st: JournalStore, when: string) => {
    assert.ok(st.isBlocked(a.did), `${when}: feed stopped`);
    assert.not.ok(st.isBlocked(b.did), `${when}: other feeds go on`);
    const eq = st.equivocations();
    assert.is(eq.length, 1, when);
    assert.is(eq[0]!.author, a.did);
    assert.is(eq[0]!.seq, 2);
    assert.equal(eq[0]!.entries, [a.at(2), other2], `${when}: both entries kept`);
    assert.type(eq[0]!.at, 'number');
    // The feed's own entries stay: the proof is beside them, not instead of them.
    assert.equal(st.head(a.did), { seq: 2, id: a.idAt(2) });
  };
  assertProof(s, 'writer');
  assertProof(await openStore(dir, true), 'read-only handle');
  await s.close();
  s = await openStore(dir);
  assertProof(s, 'after reopen');
  assert.equal(await verifyJournal(s), { ok: true, feeds: 2, entries: 3 });
});

// ---------------------------------------------------------------------------
// Views

/**
 * Four authors and every kind, with cross-feed references (P approves and
 * grants S's subscription; S revokes its other one; P re-announces its node
 * and re-offers a service; Q's offer is revoked by Q).
 */
function scenario() {
  const P = new Feed(keyOf(11));
  const S = new Feed(keyOf(12));
  const Q = new Feed(keyOf(13));
  const T = new Feed(keyOf(14));
  P.push('node', bodies.node(1));
  const web1 = P.push('offer', bodies.offer('web', 443, 'manual'));
  P.push('offer', bodies.offer('ssh', 22, 'auto'));
  Q.push('node', bodies.node(3));
  Q.push('offer', bodies.offer('db', 5432, 'auto'));
  S.push('node', bodies.node(2));
  S.push('subscribe', bodies.subscribe(P.did, 'web'));
  const subWeb = S.idAt(2);
  S.push('subscribe', bodies.subscribe(Q.did, 'db'));
  const subDb = S.idAt(3);
  T.push('node', bodies.node(4));
  T.push('subscribe', bodies.subscribe(P.did, 'ssh'));
  P.push('approve', bodies.approve(subWeb));
  P.push('grant', bodies.grant(subWeb, S.did, 'web', '10.99.0.2'));
  const grant = P.idAt(5);
  P.push('grant', bodies.grant(T.idAt(2), T.did, 'ssh', '10.99.0.4'));
  P.push('ungrant', { ...bodies.ungrant(grant, S.did, 'web', '10.99.0.2'), reason: 'revoked' });
  S.push('revoke', bodies.revoke(subDb));
  P.push('node', { ...bodies.node(1), gossip: 'wss://p.example:7443' });
  P.push('offer', bodies.offer('web', 8443, 'manual'));
  Q.push('revoke', bodies.revoke(Q.idAt(2)));
  T.push('revoke', bodies.revoke(T.idAt(2)));
  return { P, S, Q, T, web1, subWeb, subDb, grant };
}

async function allViews(s: JournalStore) {
  const out: Record<string, unknown> = {};
  for (const v of VIEWS) out[v] = s.viewAll(v);
  return out;
}

test('views: each kind writes its rows, keyed as designed', async () => {
  const { P, S, Q, T, subWeb, subDb, grant } = scenario();
  const s = await openStore(tempDir());
  for (const f of [P, S, Q, T]) await commit(s, f.entries);
  // node: keyed by author, the latest announcement wins
  assert.equal(s.view('nodes', P.did), {
    ...bodies.node(1),
    gossip: 'wss://p.example:7443',
    id: P.idAt(8),
    seq: 8,
    ts: P.at(8).ts,
  });
  // offer: by id, plus (provider, service) → the latest offer
  assert.equal(s.view('offers', P.idAt(2)), {
    provider: P.did,
    ...bodies.offer('web', 443),
    ts: P.at(2).ts,
  });
  assert.equal(s.view('offersByService', `${P.did} web`), { offer: P.idAt(9), ts: P.at(9).ts });
  assert.equal(s.view('offersByService', `${P.did} ssh`), { offer: P.idAt(3), ts: P.at(3).ts });
  // subscribe: by id
  assert.equal(s.view('subscriptions', subWeb), {
    subscriber: S.did,
    provider: P.did,
    service: 'web',
    ts: S.at(2).ts,
  });
  // approve: (subscription, approver)
  assert.equal(s.view('approvals', `${subWeb} ${P.did}`), { id: P.idAt(4), ts: P.at(4).ts });
  assert.is(s.view('approvals', `${subWeb} ${S.did}`), undefined);
  // revoke: (target, revoker)
  assert.equal(s.view('revocations', `${subDb} ${S.did}`), { id: S.idAt(4), ts: S.at(4).ts });
  assert.equal(s.view('revocations', `${Q.idAt(2)} ${Q.did}`), { id: Q.idAt(3), ts: Q.at(3).ts });
  // grant / ungrant
  assert.equal(s.view('grants', grant), {
    provider: P.did,
    ...bodies.grant(subWeb, S.did, 'web', '10.99.0.2'),
    ts: P.at(5).ts,
  });
  assert.equal(s.view('ungrants', `${grant} ${P.did}`), {
    id: P.idAt(7),
    reason: 'revoked',
    ts: P.at(7).ts,
  });
  assert.is(s.viewAll('grants').length, 2);
  assert.is(s.viewAll('nodes').length, 4);
  assert.is(s.viewAll('nodes', 2).length, 2, 'viewAll honours its limit');
});

test('views converge: feeds applied in different arrival orders give identical views', async () => {
  const { P, S, Q, T } = scenario();
  const feeds = [P, S, Q, T];
  // Order 1: each feed whole, in order. Order 2: reversed feeds, one entry per commit.
  // Order 3: round-robin across feeds, mixed-author batches of three.
  const one = await openStore(tempDir());
  for (const f of feeds) await commit(one, f.entries);
  const two = await openStore(tempDir());
  for (const f of [...feeds].reverse()) for (const e of f.entries) await commit(two, [e]);
  const three = await openStore(tempDir());
  const rr: Entry[] = [];
  for (let i = 0; i < 10; i++) for (const f of feeds) if (f.entries[i]) rr.push(f.entries[i]!);
  for (let i = 0; i < rr.length; i += 3) await commit(three, rr.slice(i, i + 3));
  const expected = await allViews(one);
  assert.equal(await allViews(two), expected, 'reversed, one by one');
  assert.equal(await allViews(three), expected, 'round-robin');
  for (const s of [two, three]) {
    assert.equal(s.versionVector(), one.versionVector());
    assert.is(s.count(), one.count());
  }
  // Arrival order is local and differs; only the views must agree.
  assert.not.equal(
    one.tail().map((x) => x.id),
    two.tail().map((x) => x.id),
  );
});

// ---------------------------------------------------------------------------
// Format

test('a store of another format refuses to open: ERR_STORAGE_FORMAT (writer and read-only)', async () => {
  const dir = tempDir();
  const s = await JournalStore.open(dir);
  await s.close();
  const raw = open({ path: join(dir, 'journal.mdb'), maxDbs: 12 });
  const meta = raw.openDB<number, string>('meta', {});
  assert.is(meta.get('format'), STORE_FORMAT);
  await meta.put('format', STORE_FORMAT + 1);
  await raw.close();
  await rejectsWith(JournalStore.open(dir), 'ERR_STORAGE_FORMAT');
  await rejectsWith(JournalStore.open(dir, { readOnly: true }), 'ERR_STORAGE_FORMAT');
});

test('a format 1 store (every signature checked on ingest) opens as format 2 with nothing unaudited', async () => {
  const dir = tempDir();
  const a = new Feed(keyOf(1));
  const s = await JournalStore.open(dir);
  await s.commit(a.fill(3).map(checked));
  await s.close();
  const raw = open({ path: join(dir, 'journal.mdb'), maxDbs: 12 });
  const meta = raw.openDB<number, string>('meta', {});
  await meta.put('format', 1);
  await raw.close();
  const migrated = await JournalStore.open(dir);
  try {
    assert.is(migrated.head(a.did)?.seq, 3);
    assert.is(migrated.unaudited().size, 0);
  } finally {
    await migrated.close();
  }
  const again = open({ path: join(dir, 'journal.mdb'), maxDbs: 12 });
  assert.is(again.openDB<number, string>('meta', {}).get('format'), 2);
  await again.close();
});

test('entries stored on a later signature mark where the audit starts; markAudited moves it and clears it at the head', async () => {
  const dir = tempDir();
  const a = new Feed(keyOf(1));
  a.fill(5);
  const s = await JournalStore.open(dir);
  try {
    const riding = (e: Entry) => ({ ...checked(e), unverifiedSig: true as const });
    await s.commit([checked(a.at(1)), ...a.entries.slice(1, 4).map(riding), checked(a.at(5))]);
    assert.equal([...s.unaudited()], [[a.did, 2]]);
    await s.markAudited(new Map([[a.did, 4]]));
    assert.equal([...s.unaudited()], [[a.did, 4]]);
    await s.markAudited(new Map([[a.did, 6]]));
    assert.equal([...s.unaudited()], []);
    await s.recordBadSignature(a.did, 3, checked(a.at(3)).bytes);
    assert.ok(s.isBlocked(a.did));
    assert.ok(s.stoppedBySignature(a.did));
    assert.equal(
      s.badSignatures().map((b) => [b.author, b.seq]),
      [[a.did, 3]],
    );
  } finally {
    await s.close();
  }
  // Persisted: a read-only handle sees the stop.
  const ro = await JournalStore.open(dir, { readOnly: true });
  try {
    assert.ok(ro.stoppedBySignature(a.did));
    assert.ok(ro.isBlocked(a.did));
  } finally {
    await ro.close();
  }
});

test('viewAll pages: at most `limit` rows, and with `after` only the keys after it', async () => {
  const dir = tempDir();
  const s = await JournalStore.open(dir);
  try {
    const a = new Feed(keyOf(1));
    const services = Array.from({ length: 7 }, (_, i) => `svc_${i}`);
    await s.commit(services.map((svc, i) => checked(a.push('offer', bodies.offer(svc, 9000 + i)))));
    const all = s.viewAll('offers').map(([k]) => k);
    assert.is(all.length, 7);
    assert.equal(
      s.viewAll('offers', 3).map(([k]) => k),
      all.slice(0, 3),
    );
    assert.equal(
      s.viewAll('offers', 3, all[2]).map(([k]) => k),
      all.slice(3, 6),
    );
    assert.equal(
      s.viewAll('offers', 3, all[5]).map(([k]) => k),
      all.slice(6),
    );
    assert.equal(s.viewAll('offers', 3, all[6]), []);
  } finally {
    await s.close();
  }
});

test.run();
