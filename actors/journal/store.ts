/**
 * The journal's LMDB environment. One writer (the journal actor) opens it
 * writable; anyone else opens it read-only (`readOnly: true`), where every
 * write throws.
 *
 * Layout (named databases in one environment, file `journal.mdb`):
 *   entries        [author, seq] → canonical entry bytes (codec v1)
 *   ids            id → [author, seq]
 *   heads          author → { seq, id }
 *   arrivals       n → id           local arrival order, for `tail`
 *   requests       requestId → { id, digest }   idempotent appends
 *   equivocations  [author, seq] → { entries: [bytes, bytes], at }
 *   badsigs        [author, seq] → { entry: bytes, at }   feed stopped by the audit
 *   unaudited      author → seq: from this seq up to the head, entries may
 *                  have been taken on a later entry's signature; the audit
 *                  checks their own and moves it up (format 2)
 *   views          [view, key] → row (views.ts)
 *   meta           'format' → STORE_FORMAT; 'mesh' → the id of the mesh this
 *                  node belongs to (set by founding or joining one)
 *
 * Durability: a commit's puts are one lmdb-js transaction (same event turn),
 * and their promises resolve only once it is flushed to disk, so an ack sent
 * after `commit()` resolves is durable. Commits are serialised by the
 * caller: a failed commit must not be followed by one that chains onto it.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'lmdb';
import type { Database, RootDatabase } from 'lmdb';
import { E } from '../../runtime/errors.js';
import { JOURNAL_LAYOUT, idsWithPrefix, viewPage } from '../../runtime/journal-reader.js';
import type { ViewsDb } from '../../runtime/journal-reader.js';
import { decodeEntry, entryId } from '../../runtime/domain/codec.js';
import type { Entry } from '../../runtime/domain/codec.js';
import type { CheckedEntry } from './validate.js';
import { rowsAfterTruncation, viewRows } from './views.js';
import type { ViewName, ViewRow } from './views.js';
import type { ViewReader, ViewRowOf } from '../../runtime/domain/views.js';
import { MEMBERSHIP_KINDS } from '../../runtime/domain/entries.js';
import { MembershipIndex, readMembership } from '../../runtime/domain/membership.js';
import { installCommitFailureFilter, storageError } from './storage-errors.js';

/**
 * On-disk layout version; a different one refuses to open (docs/formats.md).
 * Format 1 had every entry's own signature checked before it was
 * stored, so it opens as format 2 with nothing unaudited (the new databases
 * empty) and is marked 2: a build that knows only format 1 would take
 * unaudited entries for audited ones.
 */
export const STORE_FORMAT = JOURNAL_LAYOUT.format;
const MIGRATES_FROM = [1];
/** A string key part longer than this could exceed LMDB's 1978-byte key limit once encoded. */
const MAX_KEY_PART = 1024;
/** Upper bound of one range read: keeps a reply's size bounded. */
export const MAX_RANGE = 1000;

export interface Head {
  seq: number;
  id: string;
}

export interface RequestRecord {
  id: string;
  /** kind + canonical body hash: the same requestId must mean the same append. */
  digest: string;
}

export interface Equivocation {
  author: string;
  seq: number;
  entries: [Entry, Entry];
  at: number;
}

export interface StoreOptions {
  readOnly?: boolean;
}

export class JournalStore implements ViewReader {
  readonly readOnly: boolean;
  private readonly root: RootDatabase;
  private readonly entries: Database<Uint8Array, [string, number]>;
  private readonly ids: Database<[string, number], string>;
  private readonly headsDb: Database<Head, string>;
  private readonly arrivals: Database<string, number>;
  private readonly requests: Database<RequestRecord, string>;
  private readonly equivocationsDb: Database<
    { entries: [string, string]; at: number },
    [string, number]
  >;
  private readonly badSigsDb: Database<{ entry: string; at: number }, [string, number]>;
  private readonly unauditedDb: Database<number, string>;
  private readonly views: ViewsDb;
  private readonly meta: Database<number | string, string>;
  /** Membership of this node's mesh, derived from the views (writer: after every commit that changes it). */
  private membershipIndex: MembershipIndex | undefined;
  /** Writer only: the authoritative heads, arrival counter and blocked feeds. */
  private heads = new Map<string, Head>();
  private blocked = new Set<string>();
  private badSigFeeds = new Set<string>();
  /** Writer only: author → first seq whose own signature is not audited yet. */
  private unauditedFrom = new Map<string, number>();
  private nextArrival = 1;
  private closed = false;

  private constructor(
    private readonly dir: string,
    options: StoreOptions,
  ) {
    this.readOnly = options.readOnly === true;
    if (!this.readOnly) installCommitFailureFilter();
    if (!this.readOnly) mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.root = open({
      path: join(dir, JOURNAL_LAYOUT.file),
      maxDbs: JOURNAL_LAYOUT.maxDbs,
      readOnly: this.readOnly,
    });
    const db = <V, K extends string | number | [string, number] | [string, string]>(
      name: string,
      binary = false,
    ) => this.root.openDB<V, K>(name, binary ? { encoding: 'binary' } : {});
    this.entries = db('entries', true);
    this.ids = db('ids');
    this.headsDb = db('heads');
    this.arrivals = db('arrivals');
    this.requests = db('requests');
    this.equivocationsDb = db('equivocations');
    this.badSigsDb = db('badsigs');
    this.unauditedDb = db('unaudited');
    this.views = db('views');
    this.meta = this.root.openDB<number | string, string>('meta', {});
  }

  static async open(dir: string, options: StoreOptions = {}): Promise<JournalStore> {
    const store = new JournalStore(dir, options);
    const meta = store.root.openDB<number, string>('meta', {});
    const format = meta.get('format');
    const migrates = format !== undefined && MIGRATES_FROM.includes(format);
    if ((format === undefined || migrates) && !store.readOnly)
      await meta.put('format', STORE_FORMAT);
    else if (format !== undefined && format !== STORE_FORMAT && !migrates) {
      await store.close();
      throw E.ERR_STORAGE_FORMAT(
        `journal format ${format} is not ${STORE_FORMAT}: this meshnode cannot open it. To migrate, run the meshnode version that wrote it, or move ${dir} aside and start: the node re-fetches every feed, its own included, from its peers (docs/operating.md, Upgrades)`,
      );
    }
    if (!store.readOnly) store.loadWriterState();
    return store;
  }

  /** The author's head, or undefined for an unknown feed. */
  head(author: string): Head | undefined {
    return this.readOnly ? this.headsDb.get(author) : this.heads.get(author);
  }

  /** author → head seq, for every feed. */
  versionVector(): Record<string, number> {
    const out: Record<string, number> = {};
    if (!this.readOnly) {
      for (const [author, h] of this.heads) out[author] = h.seq;
      return out;
    }
    for (const { key, value } of this.headsDb.getRange()) out[key] = value.seq;
    return out;
  }

  get(author: string, seq: number): Entry | undefined {
    const bytes = this.entries.getBinary([author, seq]);
    return bytes ? decodeEntry(bytes) : undefined;
  }

  /** The stored bytes of (author, seq). */
  getBytes(author: string, seq: number): Uint8Array | undefined {
    return this.entries.getBinary([author, seq]) ?? undefined;
  }

  /** The id of (author, seq), recomputed from its stored bytes. */
  idAt(author: string, seq: number): string | undefined {
    const bytes = this.getBytes(author, seq);
    return bytes ? entryId(bytes) : undefined;
  }

  /** Where the id index says entry `id` is: [author, seq]. */
  locate(id: string): readonly [string, number] | undefined {
    return this.ids.get(id);
  }

  byId(id: string): Entry | undefined {
    const at = this.ids.get(id);
    return at ? this.get(at[0], at[1]) : undefined;
  }

  /** Entries from `fromSeq` to `toSeq` inclusive (at most `limit`, capped at MAX_RANGE). */
  range(
    author: string,
    fromSeq: number,
    toSeq = Number.MAX_SAFE_INTEGER,
    limit = MAX_RANGE,
  ): Entry[] {
    const out: Entry[] = [];
    for (const { value } of this.entries.getRange({
      start: [author, fromSeq],
      end: [author, toSeq + 1],
      limit: Math.min(limit, MAX_RANGE),
    })) {
      out.push(decodeEntry(value));
    }
    return out;
  }

  /** Stored bytes of a feed's entries from `fromSeq` to `toSeq`, undecoded (for verify). */
  rangeBytes(
    author: string,
    fromSeq: number,
    toSeq: number,
    limit = MAX_RANGE,
  ): Array<{ seq: number; bytes: Uint8Array }> {
    const out: Array<{ seq: number; bytes: Uint8Array }> = [];
    for (const { key, value } of this.entries.getRange({
      start: [author, fromSeq],
      end: [author, toSeq + 1],
      limit: Math.min(limit, MAX_RANGE),
    })) {
      out.push({ seq: key[1], bytes: value });
    }
    return out;
  }

  /** Local arrivals after `after` (exclusive), oldest first. */
  tail(after = 0, limit = 100): Array<{ arrival: number; id: string; entry: Entry }> {
    const out: Array<{ arrival: number; id: string; entry: Entry }> = [];
    for (const { key, value } of this.arrivals.getRange({
      start: after + 1,
      limit: Math.min(limit, MAX_RANGE),
    })) {
      const entry = this.byId(value);
      if (entry) out.push({ arrival: key, id: value, entry });
    }
    return out;
  }

  /** The newest `count` arrivals, oldest of them first (`journal tail -n`). */
  tailLast(count: number): Array<{ arrival: number; id: string; entry: Entry }> {
    const out: Array<{ arrival: number; id: string; entry: Entry }> = [];
    // Removed entries leave their arrival rows behind: walk back past them.
    for (const { key, value } of this.arrivals.getRange({ reverse: true })) {
      if (out.length >= Math.min(count, MAX_RANGE)) break;
      const entry = this.byId(value);
      if (entry) out.push({ arrival: key, id: value, entry });
    }
    return out.reverse();
  }

  request(requestId: string): RequestRecord | undefined {
    return this.requests.get(requestId);
  }

  isBlocked(author: string): boolean {
    if (!this.readOnly) return this.blocked.has(author);
    for (const _ of this.equivocationsDb.getKeys(feedKeys(author))) return true;
    return this.stoppedBySignature(author);
  }

  /** Stopped by the signature audit (not by an equivocation). */
  stoppedBySignature(author: string): boolean {
    if (!this.readOnly) return this.badSigFeeds.has(author);
    for (const _ of this.badSigsDb.getKeys(feedKeys(author))) return true;
    return false;
  }

  /** How many entries the audit stopped a feed on (a count, without decoding them). */
  badSignatureCount(): number {
    return this.badSigsDb.getCount();
  }

  /** Entries stopped on by the audit: [author, seq, entry]. */
  badSignatures(): Array<{ author: string; seq: number; entry: Entry; at: number }> {
    return [...this.badSigsDb.getRange()].map(({ key, value }) => ({
      author: key[0],
      seq: key[1],
      entry: decodeEntry(Buffer.from(value.entry, 'base64')),
      at: value.at,
    }));
  }

  /** Writer only: author → first seq whose own signature the audit has not checked. */
  unaudited(): ReadonlyMap<string, number> {
    return this.unauditedFrom;
  }

  /**
   * The audit checked every entry of each author below its next seq: one
   * transaction for all (a mark lost to a crash only means checking again).
   */
  async markAudited(next: ReadonlyMap<string, number>): Promise<void> {
    this.assertWritable();
    const done = new Map<string, number>();
    const writes = new Set<Promise<boolean>>();
    for (const [author, nextSeq] of next) {
      const from = this.unauditedFrom.get(author);
      if (from === undefined || nextSeq <= from) continue;
      done.set(author, nextSeq);
      writes.add(
        nextSeq > (this.heads.get(author)?.seq ?? 0)
          ? this.unauditedDb.remove(author)
          : this.unauditedDb.put(author, nextSeq),
      );
    }
    try {
      await Promise.all(writes);
    } catch (err) {
      throw storageError(err, this.dir);
    }
    // Callers serialise this with commits, so the heads are those the marks were written against.
    for (const [author, nextSeq] of done) {
      if (nextSeq > (this.heads.get(author)?.seq ?? 0)) this.unauditedFrom.delete(author);
      else this.unauditedFrom.set(author, nextSeq);
    }
  }

  /** Keep the entry whose own signature failed the audit, and stop accepting its feed. */
  async recordBadSignature(author: string, seq: number, bytes: Uint8Array): Promise<void> {
    this.assertWritable();
    try {
      await this.badSigsDb.put([author, seq], {
        entry: Buffer.from(bytes).toString('base64'),
        at: Date.now(),
      });
    } catch (err) {
      throw storageError(err, this.dir);
    }
    this.blocked.add(author);
    this.badSigFeeds.add(author);
  }

  equivocations(): Equivocation[] {
    return [...this.equivocationsDb.getRange()].map(({ key, value }) => ({
      author: key[0],
      seq: key[1],
      entries: value.entries.map((b64) => decodeEntry(Buffer.from(b64, 'base64'))) as [
        Entry,
        Entry,
      ],
      at: value.at,
    }));
  }

  view<V extends ViewName>(view: V, key: string): ViewRowOf[V] | undefined {
    return this.views.get([view, key]) as ViewRowOf[V] | undefined;
  }

  /** Rows of `view` in key order, at most `limit`, only keys after `after` if given. */
  viewAll<V extends ViewName>(
    view: V,
    limit = MAX_RANGE,
    after?: string,
  ): Array<[string, ViewRowOf[V]]> {
    return viewPage(this.views, view, limit, after);
  }

  /** Entry ids starting with `prefix` (at most `limit`): resolving a short id. */
  idsWithPrefix(prefix: string, limit = 10): string[] {
    return idsWithPrefix(this.ids, prefix, limit);
  }

  /** The mesh this node belongs to, or null (an open directory of no mesh). */
  meshId(): string | null {
    const id = this.meta.get('mesh');
    return typeof id === 'string' ? id : null;
  }

  /** Record the mesh this node belongs to (founding or joining); durable once resolved. */
  async setMeshId(id: string): Promise<void> {
    this.assertWritable();
    try {
      await this.meta.put('mesh', id);
    } catch (err) {
      throw storageError(err, this.dir);
    }
    this.membershipIndex = undefined;
  }

  /** The membership of this node's mesh (runtime/domain/membership.ts), derived once per change. */
  membership(): MembershipIndex {
    if (!this.membershipIndex || this.readOnly)
      this.membershipIndex = new MembershipIndex(readMembership(this, this.meshId()));
    return this.membershipIndex;
  }

  /** The last seq of an expelled feed this node keeps: its cut plus the evidence window (CUT_EVIDENCE). */
  keptThrough(author: string): number | undefined {
    return this.membership().keptThrough(author);
  }

  /**
   * Remove `author`'s entries above `cut`, in one durable transaction: the
   * entries, their id index, their view rows (rows those entries had
   * overwritten are rewritten from the entries that remain), the head and
   * the audit mark. Arrival rows of removed entries stay (tail skips them).
   * Why truncate past the evidence window rather than keep everything
   * inert: an expelled node must not make every node store what it writes.
   */
  async truncate(author: string, cut: number): Promise<number> {
    this.assertWritable();
    const head = this.heads.get(author);
    if (!head || head.seq <= cut) return 0;
    const decoded = (from: number, to: number) =>
      [...this.entries.getRange({ start: [author, from], end: [author, to] })].map(
        ({ key, value }) => ({ seq: key[1], id: entryId(value), entry: decodeEntry(value) }),
      );
    const removed = decoded(cut + 1, Number.MAX_SAFE_INTEGER);
    const writes = new Set<Promise<boolean>>();
    for (const r of removed) {
      writes.add(this.entries.remove([author, r.seq]));
      writes.add(this.ids.remove(r.id));
    }
    for (const { view, key, row } of rowsAfterTruncation(removed, () => decoded(1, cut + 1))) {
      writes.add(row ? this.views.put([view, key], row) : this.views.remove([view, key]));
    }
    const newHead: Head | undefined =
      cut > 0 ? { seq: cut, id: this.idAt(author, cut)! } : undefined;
    writes.add(newHead ? this.headsDb.put(author, newHead) : this.headsDb.remove(author));
    const from = this.unauditedFrom.get(author);
    if (from !== undefined && from > cut) writes.add(this.unauditedDb.remove(author));
    await Promise.all(writes).catch((err: unknown) => this.failed(err));
    if (newHead) this.heads.set(author, newHead);
    else this.heads.delete(author);
    if (from !== undefined && from > cut) this.unauditedFrom.delete(author);
    this.membershipIndex = undefined;
    return removed.length;
  }

  /**
   * Truncate every feed held past what its cut keeps (what the writer does
   * after a commit changed the membership): a `member-revoke` arrived, or
   * became effective, after entries above it.
   */
  async truncateOverCut(): Promise<Array<{ author: string; cut: number; removed: number }>> {
    const done: Array<{ author: string; cut: number; removed: number }> = [];
    // One pass: the membership counts no act above a cut, whatever its time
    // (runtime/domain/membership.ts), so removing what lies past the window
    // above it cannot change the membership.
    const m = this.membership();
    for (const { did } of m.data.cuts) {
      const keep = m.keptThrough(did)!;
      if ((this.head(did)?.seq ?? 0) > keep)
        done.push({ author: did, cut: keep, removed: await this.truncate(did, keep) });
    }
    return done;
  }

  /** Number of entries stored (all feeds). */
  count(): number {
    return this.entries.getCount();
  }

  /**
   * Append entries (already checked, signature-verified and chained by the
   * caller) with their view rows and request records, in one transaction.
   * Resolves once durable. On failure nothing of the batch is stored and the
   * in-memory state is reloaded from disk.
   */
  async commit(
    batch: readonly CheckedEntry[],
    requests: ReadonlyArray<[string, RequestRecord]> = [],
  ): Promise<void> {
    this.assertWritable();
    if (this.closed) throw E.ERR_STORAGE('the journal is closed');
    const staged = new Map<string, Head>();
    let arrival = this.nextArrival;
    for (const c of batch) staged.set(c.entry.author, { seq: c.entry.seq, id: c.id });
    // Every row is an async put issued in this one synchronous loop: lmdb-js
    // puts all writes of one event turn into one transaction, committed and
    // fsynced on its own write thread, and resolves each put only once that
    // transaction is on disk. So the batch is atomic and the await is the
    // durable ack. (A synchronous transactionSync was ~20% faster for single
    // appends, but a worker terminated inside it deadlocks its own teardown
    // on lmdb-js's per-thread lock — a crash must never hang the node.)
    // Anything that would make a put throw synchronously is refused before the
    // first put, so a batch never half-enters the event turn's transaction.
    for (const [requestId] of requests) {
      if (Buffer.byteLength(requestId) > MAX_KEY_PART) {
        throw E.ERR_STORAGE(
          `request id of ${Buffer.byteLength(requestId)} bytes is too long a key`,
        );
      }
    }
    // A view row that entries of this batch write more than once (a feed's
    // node record, announced again) is put once, with its last value: the
    // same final state without the redundant puts.
    const rows = new Map<string, ViewRow>();
    for (const c of batch) {
      for (const row of viewRows(c)) {
        if (Buffer.byteLength(row[1]) > MAX_KEY_PART) throw E.ERR_STORAGE('view key too long');
        rows.set(`${row[0]} ${row[1]}`, row);
      }
    }
    const writes = new Set<Promise<boolean>>();
    for (const c of batch) {
      const at: [string, number] = [c.entry.author, c.entry.seq];
      writes.add(this.entries.put(at, c.bytes));
      writes.add(this.ids.put(c.id, at));
      writes.add(this.arrivals.put(arrival++, c.id));
    }
    // The first unaudited entry of a feed with none so far marks where the audit starts.
    const unaudited = new Map<string, number>();
    for (const c of batch) {
      const { author, seq } = c.entry;
      if (c.unverifiedSig && !this.unauditedFrom.has(author) && !unaudited.has(author))
        unaudited.set(author, seq);
    }
    for (const [author, seq] of unaudited) writes.add(this.unauditedDb.put(author, seq));
    for (const [view, key, row] of rows.values()) writes.add(this.views.put([view, key], row));
    for (const [author, head] of staged) writes.add(this.headsDb.put(author, head));
    for (const [requestId, record] of requests) writes.add(this.requests.put(requestId, record));
    // The puts of one transaction share their promise: a set awaits it once.
    await Promise.all(writes).catch((err: unknown) => this.failed(err));
    for (const [author, head] of staged) this.heads.set(author, head);
    for (const [author, seq] of unaudited) this.unauditedFrom.set(author, seq);
    this.nextArrival = arrival;
    if (batch.some((c) => MEMBERSHIP_KINDS.has(c.entry.kind))) this.membershipIndex = undefined;
  }

  /** Whether the last commits changed the membership (it is derived again on the next read). */
  membershipStale(): boolean {
    return this.membershipIndex === undefined;
  }

  /** Keep both signed entries as proof and stop accepting the feed. */
  async recordEquivocation(
    author: string,
    seq: number,
    a: Uint8Array,
    b: Uint8Array,
  ): Promise<void> {
    this.assertWritable();
    const entries: [string, string] = [
      Buffer.from(a).toString('base64'),
      Buffer.from(b).toString('base64'),
    ];
    try {
      await this.equivocationsDb.put([author, seq], { entries, at: Date.now() });
    } catch (err) {
      throw storageError(err, this.dir);
    }
    this.blocked.add(author);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.root.close();
  }

  /** A transaction failed: nothing of it is stored; the in-memory state is read again, and the error coded. */
  private failed(err: unknown): never {
    // lmdb-js rejects a failed commit's puts with a stand-in error and the
    // real one later, on `commitError`; unobserved, that promise would be an
    // unhandled rejection and take the worker down.
    (err as { commitError?: Promise<unknown> }).commitError?.catch(() => {});
    try {
      this.loadWriterState();
    } catch {
      // The environment itself is gone; the storage error below says why.
    }
    throw storageError(err, this.dir);
  }

  private assertWritable(): void {
    if (this.readOnly) throw E.ERR_READ_ONLY('this journal handle is read-only');
  }

  private loadWriterState(): void {
    this.heads = new Map();
    for (const { key, value } of this.headsDb.getRange()) this.heads.set(key, value);
    this.blocked = new Set();
    for (const key of this.equivocationsDb.getKeys()) this.blocked.add(key[0]);
    this.badSigFeeds = new Set();
    for (const key of this.badSigsDb.getKeys()) this.badSigFeeds.add(key[0]);
    for (const author of this.badSigFeeds) this.blocked.add(author);
    this.unauditedFrom = new Map();
    for (const { key, value } of this.unauditedDb.getRange()) this.unauditedFrom.set(key, value);
    let last = 0;
    for (const key of this.arrivals.getKeys({ reverse: true, limit: 1 })) last = key;
    this.nextArrival = last + 1;
    this.membershipIndex = undefined;
  }
}

/** The [author, seq] key range of one feed (proof databases are keyed so). */
function feedKeys(author: string): { start: [string, number]; end: [string, number] } {
  return { start: [author, 0], end: [author, Number.MAX_SAFE_INTEGER] };
}
