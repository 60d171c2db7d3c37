/**
 * Feed rules for a batch (planBatch), over an in-memory head/entry lookup:
 * chaining within a batch, idempotent duplicates, gaps, broken links,
 * equivocation with its proof, stopped feeds. No LMDB here.
 */
import * as assert from 'uvu/assert';
import { decodeEntry } from '../../../runtime/domain/codec.js';
import type { Entry } from '../../../runtime/domain/codec.js';
import {
  EquivocationError,
  StagedFeeds,
  StoredSignatureError,
  planBatch,
} from '../../../actors/journal/feed.js';
import type { FeedLookup, FeedPlan } from '../../../actors/journal/feed.js';
import type { Head } from '../../../actors/journal/store.js';
import type { CheckedEntry } from '../../../actors/journal/validate.js';
import { Feed, bodies, checked, keyOf } from '../../helpers/journal.js';
import { describe } from '../../helpers/test.js';

const test = describe('journal/feed');

/** What the store would hold: entries by author and seq, heads, stopped feeds. */
class MemoryFeeds implements FeedLookup {
  readonly rows = new Map<string, CheckedEntry>();
  readonly heads = new Map<string, Head>();
  readonly blocked = new Set<string>();
  readonly stoppedBySig = new Set<string>();

  head(author: string): Head | undefined {
    return this.heads.get(author);
  }
  getBytes(author: string, seq: number): Uint8Array | undefined {
    return this.rows.get(`${author} ${seq}`)?.bytes;
  }
  idAt(author: string, seq: number): string | undefined {
    return this.rows.get(`${author} ${seq}`)?.id;
  }
  isBlocked(author: string): boolean {
    return this.blocked.has(author) || this.stoppedBySig.has(author);
  }
  stoppedBySignature(author: string): boolean {
    return this.stoppedBySig.has(author);
  }
  /** Apply a plan as the store's commit would. */
  apply(plan: FeedPlan): void {
    for (const c of plan.appends) {
      this.rows.set(`${c.entry.author} ${c.entry.seq}`, c);
      this.heads.set(c.entry.author, { seq: c.entry.seq, id: c.id });
    }
  }
  /** Plan and apply `entries`. */
  take(entries: Entry[]): FeedPlan {
    const plan = planBatch(entries.map(checked), this);
    this.apply(plan);
    return plan;
  }
}

function rejection(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected planBatch to refuse the batch');
}

const seqs = (plan: FeedPlan) =>
  plan.appends.map((c) => `${c.entry.author.slice(-4)}#${c.entry.seq}`);

test('a new feed chains within one batch: seq 1, 2, 3 each linking to the one before', () => {
  const a = new Feed(keyOf(1));
  a.fill(3);
  const mem = new MemoryFeeds();
  const plan = mem.take(a.entries);
  assert.is(plan.appends.length, 3);
  assert.is(plan.duplicates, 0);
  assert.equal(mem.head(a.did), { seq: 3, id: a.idAt(3) });
});

test('a batch extends stored heads, and interleaves authors in any order', () => {
  const a = new Feed(keyOf(1));
  const b = new Feed(keyOf(2));
  a.fill(4);
  b.fill(3);
  const mem = new MemoryFeeds();
  mem.take([a.at(1), a.at(2)]);
  const plan = mem.take([b.at(1), a.at(3), b.at(2), a.at(4), b.at(3)]);
  assert.equal(seqs(plan), [
    `${b.did.slice(-4)}#1`,
    `${a.did.slice(-4)}#3`,
    `${b.did.slice(-4)}#2`,
    `${a.did.slice(-4)}#4`,
    `${b.did.slice(-4)}#3`,
  ]);
  assert.equal(mem.head(a.did), { seq: 4, id: a.idAt(4) });
  assert.equal(mem.head(b.did), { seq: 3, id: b.idAt(3) });
});

test('planning is pure: the lookup is not touched until the caller applies the plan', () => {
  const a = new Feed(keyOf(1));
  a.fill(2);
  const mem = new MemoryFeeds();
  const plan = planBatch(a.entries.map(checked), mem);
  assert.is(plan.appends.length, 2);
  assert.is(mem.head(a.did), undefined);
  assert.is(mem.rows.size, 0);
});

test('entries already stored (same id) are skipped and counted: ingest is idempotent', () => {
  const a = new Feed(keyOf(1));
  a.fill(5);
  const mem = new MemoryFeeds();
  mem.take(a.entries.slice(0, 3));
  const again = mem.take(a.entries.slice(0, 3));
  assert.equal(again, { appends: [], duplicates: 3, cut: 0 });
  const overlap = mem.take(a.entries); // 1-3 known, 4-5 new
  assert.is(overlap.duplicates, 3);
  assert.equal(
    overlap.appends.map((c) => c.entry.seq),
    [4, 5],
  );
});

test('the same entry twice in one batch is appended once', () => {
  const a = new Feed(keyOf(1));
  a.fill(2);
  const mem = new MemoryFeeds();
  const plan = mem.take([a.at(1), a.at(1), a.at(2), a.at(2)]);
  assert.equal(
    plan.appends.map((c) => c.entry.seq),
    [1, 2],
  );
  assert.is(plan.duplicates, 2);
});

test('ERR_SEQ_GAP: seq beyond head + 1 (new feed starting at 2, stored head 2 then 4)', () => {
  const a = new Feed(keyOf(1));
  a.fill(4);
  const mem = new MemoryFeeds();
  assert.is(rejection(() => mem.take([a.at(2)])).code, 'ERR_SEQ_GAP', 'new feed, seq 2');
  mem.take([a.at(1), a.at(2)]);
  assert.is(rejection(() => mem.take([a.at(4)])).code, 'ERR_SEQ_GAP', 'head 2, seq 4');
  // Order inside a batch matters: 4 before 3 is a gap even though 3 follows.
  assert.is(rejection(() => mem.take([a.at(4), a.at(3)])).code, 'ERR_SEQ_GAP', '4 then 3');
  assert.equal(mem.head(a.did), { seq: 2, id: a.idAt(2) });
});

test('ERR_PREV_MISMATCH: seq = head + 1 but prev is not the head id', () => {
  const a = new Feed(keyOf(1));
  a.fill(2);
  const mem = new MemoryFeeds();
  mem.take([a.at(1), a.at(2)]);
  // A fork of a: same key, different seq 2, and a seq 3 that links to the fork.
  const fork = new Feed(keyOf(1));
  fork.push('node', bodies.node(1)); // same as a#1
  fork.push('node', bodies.node(99)); // differs from a#2
  const fork3 = fork.push('node', bodies.node(3));
  assert.is(rejection(() => mem.take([fork3])).code, 'ERR_PREV_MISMATCH');
});

test('ERR_PREV_MISMATCH inside a batch: seq 2 does not link to the batched seq 1', () => {
  const a = new Feed(keyOf(1));
  a.fill(1);
  const other = new Feed(keyOf(1));
  other.push('node', bodies.node(50));
  const linkedToOther = other.push('node', bodies.node(2));
  const mem = new MemoryFeeds();
  assert.is(rejection(() => mem.take([a.at(1), linkedToOther])).code, 'ERR_PREV_MISMATCH');
  assert.is(mem.head(a.did), undefined, 'nothing of the batch applied');
});

test('equivocation, stored vs new: ERR_EQUIVOCATION carrying both entries', () => {
  const a = new Feed(keyOf(1));
  a.fill(2);
  const mem = new MemoryFeeds();
  mem.take(a.entries);
  const twin = new Feed(keyOf(1));
  twin.push('node', bodies.node(1));
  const twin2 = twin.push('offer', bodies.offer()); // another seq 2
  const err = rejection(() => mem.take([twin2]));
  assert.is(err.code, 'ERR_EQUIVOCATION');
  assert.instance(err, EquivocationError);
  const eq = err as EquivocationError;
  assert.is(eq.author, a.did);
  assert.is(eq.seq, 2);
  assert.equal(decodeEntry(eq.existing), a.at(2));
  assert.equal(decodeEntry(eq.conflicting), twin2);
});

test('equivocation on an old seq (below head) is caught, not only at the head', () => {
  const a = new Feed(keyOf(1));
  a.fill(3);
  const mem = new MemoryFeeds();
  mem.take(a.entries);
  const other = new Feed(keyOf(1));
  const other1 = other.push('node', bodies.node(77));
  const eq = rejection(() => mem.take([other1])) as EquivocationError;
  assert.is(eq.code, 'ERR_EQUIVOCATION');
  assert.is(eq.seq, 1);
  assert.equal(decodeEntry(eq.existing), a.at(1));
  assert.equal(decodeEntry(eq.conflicting), other1);
});

test('equivocation, two in one batch: both entries in the error, nothing applied', () => {
  const a = new Feed(keyOf(1));
  const x = a.make('node', bodies.node(1));
  const y = a.make('node', bodies.node(2));
  const b = new Feed(keyOf(2));
  b.fill(1);
  const mem = new MemoryFeeds();
  const eq = rejection(() => mem.take([b.at(1), x, y])) as EquivocationError;
  assert.instance(eq, EquivocationError);
  assert.is(eq.author, a.did);
  assert.is(eq.seq, 1);
  assert.equal(decodeEntry(eq.existing), x);
  assert.equal(decodeEntry(eq.conflicting), y);
  assert.is(mem.head(b.did), undefined, 'the other author’s entry was not applied either');
});

test('a stopped feed refuses everything, even an entry it already holds', () => {
  const a = new Feed(keyOf(1));
  a.fill(2);
  const b = new Feed(keyOf(2));
  b.fill(1);
  const mem = new MemoryFeeds();
  mem.take([a.at(1)]);
  mem.blocked.add(a.did);
  for (const batch of [[a.at(2)], [a.at(1)], [b.at(1), a.at(2)]]) {
    const err = rejection(() => mem.take(batch));
    assert.is(err.code, 'ERR_EQUIVOCATION');
    assert.not.instance(err, EquivocationError, 'no new proof: the feed is already stopped');
  }
  assert.equal(mem.take([b.at(1)]).appends.length, 1, 'other feeds go on');
});

test('StagedFeeds: batches planned one on another chain, dedupe and equivocate as if committed', () => {
  const store = new MemoryFeeds();
  const a = new Feed(keyOf(21));
  const b = new Feed(keyOf(22));
  a.fill(5);
  b.fill(3);
  store.take(a.entries.slice(0, 2)); // a#1-2 committed
  const staged = new StagedFeeds(store);
  const first = planBatch([a.at(3), a.at(4), b.at(1)].map(checked), staged);
  staged.add(first.appends);
  // Seen through the overlay, not (yet) in the store.
  assert.equal(staged.head(a.did), { seq: 4, id: a.idAt(4) });
  assert.equal(store.head(a.did), { seq: 2, id: a.idAt(2) });
  assert.is(staged.idAt(a.did, 3), a.idAt(3));
  assert.is(staged.idAt(a.did, 1), a.idAt(1), 'committed entries show through');
  assert.is(store.idAt(a.did, 3), undefined);
  // The next batch extends the staged heads; what the first staged is a duplicate.
  const second = planBatch([a.at(4), a.at(5), b.at(2), b.at(3)].map(checked), staged);
  assert.equal(seqs(second), [
    `${a.did.slice(-4)}#5`,
    `${b.did.slice(-4)}#2`,
    `${b.did.slice(-4)}#3`,
  ]);
  assert.is(second.duplicates, 1);
  // A different a#4 than the staged one is an equivocation, with both entries.
  const fork = new Feed(keyOf(21));
  fork.fill(3);
  fork.ids[2] = a.idAt(3); // chain the fork's #4 onto the real #3
  fork.entries[2] = a.at(3);
  const other4 = fork.push('offer', bodies.offer());
  const err = rejection(() => planBatch([checked(other4)], staged));
  assert.ok(err instanceof EquivocationError);
  assert.equal(decodeEntry((err as EquivocationError).existing), a.at(4));
  // A gap over the staged head is still a gap.
  assert.is(rejection(() => planBatch([checked(b.at(3))], staged)).code, 'ERR_SEQ_GAP');
});

/** Checked as ingest does when only a later entry's signature is checked: own signature unchecked. */
const riding = (e: Entry): CheckedEntry => ({ ...checked(e), unverifiedSig: true });

test('entries taken on a later signature: one bad own signature mid-feed rides on the chain; the last append of each author is checked here', () => {
  const a = new Feed(keyOf(1));
  a.fill(1);
  a.pushForged(keyOf(9), 'node', bodies.node(2)); // a#2: signed with the wrong key
  a.fill(1); // a#3 links to the forged a#2 and is properly signed
  const plan = planBatch(a.entries.map(riding), new MemoryFeeds());
  assert.equal(
    plan.appends.map((c) => c.entry.seq),
    [1, 2, 3],
  );
  // Ending the batch at the forged entry: nothing vouches for it, its own signature is checked.
  const err = rejection(() => planBatch(a.entries.slice(0, 2).map(riding), new MemoryFeeds()));
  assert.is(err.code, 'ERR_BAD_SIGNATURE');
  // The caller's own check stands: an entry without the flag is not checked again.
  const trusted = planBatch([riding(a.at(1)), checked(a.at(2))], new MemoryFeeds());
  assert.is(trusted.appends.length, 2);
});

test('equivocation with an unchecked conflicting entry whose signature is bad: ERR_BAD_SIGNATURE, no proof', () => {
  const a = new Feed(keyOf(1));
  a.fill(2);
  const mem = new MemoryFeeds();
  mem.take(a.entries);
  const fake = new Feed(keyOf(1));
  fake.fill(1);
  const forged = fake.pushForged(keyOf(9), 'offer', bodies.offer()); // a "seq 2" nobody signed
  const err = rejection(() => planBatch([riding(forged)], mem));
  assert.is(err.code, 'ERR_BAD_SIGNATURE');
  assert.not.instance(err, EquivocationError);
});

test('equivocation against a stored entry whose own signature is bad: ERR_FEED_STOPPED with the stored entry', () => {
  const a = new Feed(keyOf(1));
  a.fill(1);
  const bad2 = a.pushForged(keyOf(9), 'node', bodies.node(2));
  a.fill(1);
  const mem = new MemoryFeeds();
  mem.apply(planBatch(a.entries.map(riding), mem)); // stored on a#3's signature
  const twin = new Feed(keyOf(1));
  twin.fill(1);
  const other2 = twin.push('offer', bodies.offer()); // a validly signed different seq 2
  const err = rejection(() => planBatch([checked(other2)], mem));
  assert.is(err.code, 'ERR_FEED_STOPPED');
  assert.instance(err, StoredSignatureError);
  const s = err as StoredSignatureError;
  assert.is(s.seq, 2);
  assert.equal(decodeEntry(s.bytes), bad2);
});

test('a feed stopped by the signature audit refuses everything with ERR_FEED_STOPPED', () => {
  const a = new Feed(keyOf(1));
  a.fill(2);
  const mem = new MemoryFeeds();
  mem.take([a.at(1)]);
  mem.stoppedBySig.add(a.did);
  for (const batch of [[a.at(2)], [a.at(1)]])
    assert.is(rejection(() => mem.take(batch)).code, 'ERR_FEED_STOPPED');
  assert.is(
    rejection(() => planBatch([checked(a.at(2))], new StagedFeeds(mem))).code,
    'ERR_FEED_STOPPED',
  );
});

test.run();
