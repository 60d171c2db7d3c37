/**
 * Feed rules for a batch of checked entries from any authors: each must
 * extend its author's feed exactly (seq = head + 1, prev = head id),
 * possibly through earlier entries of the same batch.
 *
 *   already stored, same id        → duplicate, skipped (ingest is idempotent)
 *   stored or batched, other id    → equivocation (ERR_EQUIVOCATION), with both
 *                                    entries returned as the proof — once both
 *                                    signatures are checked: a bad one is
 *                                    ERR_BAD_SIGNATURE, or for a stored entry
 *                                    ERR_FEED_STOPPED (StoredSignatureError)
 *   seq beyond head + 1            → ERR_SEQ_GAP
 *   seq = head + 1, prev ≠ head id → ERR_PREV_MISMATCH
 *   author's feed blocked          → ERR_EQUIVOCATION or ERR_FEED_STOPPED
 *   seq above the feed's cut       → skipped and counted (`cut`): an expelled
 *                                    member's feed ends there on every node
 *                                    (runtime/domain/membership.ts); the
 *                                    relaying peer is not at fault
 *
 * Signatures: an entry may come with its own signature unchecked
 * (`unverifiedSig`, see signatureTips); it is authentic if a later entry of
 * its author that this plan appends links to it and is verified. Appends of
 * one author are one unbroken chain (each prev is the id of the one before),
 * so it is enough that the LAST append of each author has its own signature
 * checked: if the caller did not, it is checked here.
 *
 * Pure over a head/entry lookup, so it is tested without LMDB.
 */
import { E, MeshError } from '../../runtime/errors.js';
import { decodeEntry } from '../../runtime/domain/codec.js';
import type { Head } from './store.js';
import { badSignature, signatureValidBytes } from './validate.js';
import type { CheckedEntry } from './validate.js';

export interface FeedLookup {
  head(author: string): Head | undefined;
  getBytes(author: string, seq: number): Uint8Array | undefined;
  idAt(author: string, seq: number): string | undefined;
  isBlocked(author: string): boolean;
  /** Blocked because the audit found a bad signature (not an equivocation). */
  stoppedBySignature?(author: string): boolean;
  /** The last seq kept of an expelled member's feed (its cut plus the evidence window). */
  keptThrough?(author: string): number | undefined;
}

export interface FeedPlan {
  appends: CheckedEntry[];
  duplicates: number;
  /** Entries past what their feed's cut keeps, not taken. */
  cut: number;
}

export class EquivocationError extends MeshError {
  constructor(
    readonly author: string,
    readonly seq: number,
    readonly existing: Uint8Array,
    readonly conflicting: Uint8Array,
  ) {
    super(
      'ERR_EQUIVOCATION',
      `two different entries for ${author} seq ${seq}: the feed is stopped`,
    );
  }
}

/**
 * A stored entry's own signature is invalid (found when an equivocation was
 * about to be recorded against it): its feed must be stopped, the entry kept.
 */
export class StoredSignatureError extends MeshError {
  constructor(
    readonly author: string,
    readonly seq: number,
    readonly bytes: Uint8Array,
  ) {
    super(
      'ERR_FEED_STOPPED',
      `the stored entry ${author} seq ${seq} has an invalid signature: the feed is stopped`,
    );
  }
}

export function planBatch(batch: readonly CheckedEntry[], store: FeedLookup): FeedPlan {
  const heads = new Map<string, Head | undefined>();
  const batched = new Map<string, CheckedEntry>();
  const appends: CheckedEntry[] = [];
  let duplicates = 0;
  let cut = 0;
  for (const c of batch) {
    const { author, seq, prev } = c.entry;
    const kept = store.keptThrough?.(author);
    if (kept !== undefined && seq > kept) {
      cut++;
      continue;
    }
    if (store.isBlocked(author)) {
      if (store.stoppedBySignature?.(author))
        throw E.ERR_FEED_STOPPED(`feed ${author} is stopped: a bad signature`);
      throw E.ERR_EQUIVOCATION(`feed ${author} is stopped after an equivocation`);
    }
    if (!heads.has(author)) heads.set(author, store.head(author));
    const head = heads.get(author);
    const headSeq = head?.seq ?? 0;
    const key = `${author} ${seq}`;
    if (seq <= headSeq) {
      const twin = batched.get(key);
      const storedId = twin ? twin.id : store.idAt(author, seq);
      if (storedId === c.id) {
        duplicates++;
        continue;
      }
      const existing = twin ? twin.bytes : store.getBytes(author, seq)!;
      // A proof must hold two entries the author really signed, each on its
      // own signature (either may have come on a later one's).
      if (c.unverifiedSig && !signatureValidBytes(c.entry, c.bytes))
        throw badSignature(`${author} seq ${seq}`);
      if (!signatureValidBytes(twin ? twin.entry : decodeEntry(existing), existing)) {
        if (twin) throw badSignature(`${author} seq ${seq}`);
        throw new StoredSignatureError(author, seq, existing);
      }
      throw new EquivocationError(author, seq, existing, c.bytes);
    }
    if (seq > headSeq + 1) {
      throw E.ERR_SEQ_GAP(`${author} seq ${seq} does not follow head ${headSeq}`);
    }
    if (prev !== (head?.id ?? null)) {
      throw E.ERR_PREV_MISMATCH(`${author} seq ${seq} does not link to the head entry`);
    }
    heads.set(author, { seq, id: c.id });
    batched.set(key, c);
    appends.push(c);
  }
  // Each author's last append carries the chain: its own signature must hold.
  const last = new Map<string, CheckedEntry>();
  for (const c of appends) last.set(c.entry.author, c);
  for (const c of last.values()) {
    if (c.unverifiedSig && !signatureValidBytes(c.entry, c.bytes))
      throw badSignature(`${c.entry.author} seq ${c.entry.seq}`);
  }
  return { appends, duplicates, cut };
}

/**
 * A FeedLookup that sees `base` with planned, not yet committed, appends on
 * top: batches planned one after another against it chain onto each other
 * as they would onto the store once the earlier ones are committed.
 */
export class StagedFeeds implements FeedLookup {
  private readonly heads = new Map<string, Head>();
  private readonly entries = new Map<string, CheckedEntry>();

  constructor(private readonly base: FeedLookup) {}

  /** Stage a plan's appends (in order: each extends its feed). */
  add(appends: readonly CheckedEntry[]): void {
    for (const c of appends) {
      const { author, seq } = c.entry;
      this.heads.set(author, { seq, id: c.id });
      this.entries.set(`${author} ${seq}`, c);
    }
  }

  head(author: string): Head | undefined {
    return this.heads.get(author) ?? this.base.head(author);
  }

  getBytes(author: string, seq: number): Uint8Array | undefined {
    return this.entries.get(`${author} ${seq}`)?.bytes ?? this.base.getBytes(author, seq);
  }

  idAt(author: string, seq: number): string | undefined {
    return this.entries.get(`${author} ${seq}`)?.id ?? this.base.idAt(author, seq);
  }

  isBlocked(author: string): boolean {
    return this.base.isBlocked(author);
  }

  stoppedBySignature(author: string): boolean {
    return this.base.stoppedBySignature?.(author) ?? false;
  }

  keptThrough(author: string): number | undefined {
    return this.base.keptThrough?.(author);
  }
}
