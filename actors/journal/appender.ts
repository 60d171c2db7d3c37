/**
 * Local appends: the node's own entries, signed as this node and
 * group-committed on the journal's write lane (runs on the journal actor's
 * thread, the only holder of the key).
 *
 * Why it is shaped so:
 *  - Appends that arrive while a commit is in flight wait in a queue and go
 *    into one later transaction together; each is acknowledged only once
 *    that transaction is durable.
 *  - The next batch is signed while one commits, chained onto it: signing is
 *    this thread's work, the commit mostly lmdb-js's write thread and the
 *    fsync, so the two overlap. If that commit fails (or an ingest moved our
 *    own feed meanwhile), the batch signed behind it chains onto entries that
 *    are not stored: it is signed again on the stored head when its turn
 *    comes. Its first signatures never left this thread.
 *  - Idempotency (the request records) is the caller's: a request reaches
 *    `append` once.
 */
import type { AppendResult } from '../../runtime/protocol/journal.js';
import { sign } from '../../runtime/crypto/index.js';
import type { KeyPair } from '../../runtime/crypto/index.js';
import type { EntryKind } from '../../runtime/domain/entries.js';
import { E } from '../../runtime/errors.js';
import {
  ENTRY_VERSION,
  MAX_ENTRY_BYTES,
  entryId,
  sigToString,
  signedCanonical,
  unsignedCanonical,
} from '../../runtime/domain/codec.js';
import type { Entry, UnsignedEntry } from '../../runtime/domain/codec.js';
import type { Head, JournalStore } from './store.js';
import type { CheckedEntry } from './validate.js';

/**
 * Local appends signed as one batch, at most. Half the bench's 1,000 in
 * flight: one batch is written while the next is signed, and the two take
 * about as long — with whole 1,000-entry batches nothing is left to sign
 * during a commit and the two steps take turns (measured here: 13.8k/s at
 * 1,000, 15.6–15.9k/s at 500, 12.2–16k/s at 250 with more batches ahead).
 */
export const MAX_SEAL = 500;
/** Signed batches waiting for the lane, at most: more would only sign smaller batches. */
const SEALED_AHEAD = 1;
const utf8 = new TextEncoder();

export type { AppendResult } from '../../runtime/protocol/journal.js';

/** One append, checked by the caller. */
export interface AppendRequest {
  kind: EntryKind;
  body: Record<string, unknown>;
  /** The body's canonical JSON, computed once for the digest and reused for the signature. */
  bodyJson: string;
  requestId: string;
  /** Stored with the request record (kind + canonical body hash). */
  digest: string;
}

/** What the appender needs from the journal actor. */
export interface AppenderHost {
  readonly store: JournalStore;
  readonly key: KeyPair;
  /** Run `job` after every write before it (the journal's one write lane). */
  onLane<T>(job: () => Promise<T>): Promise<T>;
  /** A batch is durable (acknowledged already). */
  appendsOnCommitted(entries: readonly CheckedEntry[]): void;
  /** A batch's commit failed (its appends are rejected with `err`). */
  appendsOnFailed(err: unknown, count: number): void;
  /** Appends signed again: they were signed behind a commit that then failed. */
  appendsOnResealed(count: number): void;
}

export class Appender {
  private queue: Queued[] = [];
  private flushScheduled = false;
  /** Signed batches whose commit has not started (at most SEALED_AHEAD). */
  private sealedWaiting = 0;
  /** Signed batches not yet stored or failed (waiting, and the one committing). */
  private unsettled = 0;
  /** Our own feed's head after the batch signed last (meaningful while any is unsettled). */
  private tipHead: Head | undefined;

  constructor(private readonly host: AppenderHost) {}

  /** Appends queued and not signed yet. */
  get queued(): number {
    return this.queue.length;
  }

  /** Sign and store `req` as this node; resolves once it is durable. */
  append(req: AppendRequest): Promise<AppendResult> {
    const result = new Promise<AppendResult>((resolve, reject) => {
      this.queue.push({ ...req, resolve, reject });
    });
    this.scheduleFlush();
    return result;
  }

  /**
   * Seal on the next check phase, not in a microtask: the port delivers the
   * messages already waiting in this loop turn first, so they join the batch
   * (a microtask flush would commit — and fsync — one append at a time).
   */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.sealQueued();
    });
  }

  /** Sign what is queued (up to MAX_SEAL) as the next batch and put its commit on the lane. */
  private sealQueued(): void {
    if (this.sealedWaiting >= SEALED_AHEAD || this.queue.length === 0) return;
    const { store, key } = this.host;
    const batch = this.seal(
      this.queue.splice(0, MAX_SEAL),
      this.unsettled > 0 ? this.tipHead : store.head(key.did),
    );
    if (!batch) return this.scheduleFlush();
    this.sealedWaiting++;
    this.unsettled++;
    this.tipHead = headAfter(batch);
    void this.host.onLane(() => this.commitSealed(batch));
    // Room for another signed batch: seal what is left.
    if (this.queue.length > 0) this.scheduleFlush();
  }

  /**
   * Sign appends as this node, chained from `head`. An entry over the size
   * limit fails alone; undefined when none is left.
   */
  private seal(appends: Queued[], head: Head | undefined): SealedBatch | undefined {
    const { key } = this.host;
    const batch: SealedBatch = { appends: [], entries: [], prev: head };
    for (const a of appends) {
      const unsigned: UnsignedEntry = {
        v: ENTRY_VERSION,
        author: key.did,
        seq: (head?.seq ?? 0) + 1,
        prev: head?.id ?? null,
        ts: Date.now(),
        kind: a.kind,
        body: a.body,
      };
      const unsignedJson = unsignedCanonical(unsigned, a.bodyJson);
      const sig = sigToString(sign(key, utf8.encode(unsignedJson)));
      const bytes = utf8.encode(signedCanonical(unsignedJson, sig));
      if (bytes.length > MAX_ENTRY_BYTES) {
        // Only this append fails; its batch-mates go on.
        a.reject(
          E.ERR_TOO_LARGE(`append is ${bytes.length} bytes; the limit is ${MAX_ENTRY_BYTES}`),
        );
        continue;
      }
      const c: CheckedEntry = { entry: { ...unsigned, sig }, bytes, id: entryId(bytes) };
      batch.entries.push(c);
      batch.appends.push(a);
      head = { seq: unsigned.seq, id: c.id };
    }
    return batch.entries.length > 0 ? batch : undefined;
  }

  /** One group commit, on the lane; acknowledges each append once it is durable. */
  private async commitSealed(sealed: SealedBatch): Promise<void> {
    this.sealedWaiting--;
    try {
      const batch = this.onStoredHead(sealed);
      // Sign the next batch while this one is written.
      if (this.queue.length > 0) this.scheduleFlush();
      if (batch) await this.commit(batch);
    } finally {
      this.unsettled--;
    }
  }

  /**
   * `sealed` if it chains onto the stored head; else (signed behind a commit
   * that failed) its appends signed again on what is stored.
   */
  private onStoredHead(sealed: SealedBatch): SealedBatch | undefined {
    const { store, key } = this.host;
    const stored = store.head(key.did);
    if (sealed.prev?.id === stored?.id) return sealed;
    this.host.appendsOnResealed(sealed.appends.length);
    const batch = this.seal(sealed.appends, stored);
    // The newest signed batch: later seals chain onto it (older tips are stale).
    if (batch && this.sealedWaiting === 0) this.tipHead = headAfter(batch);
    return batch;
  }

  private async commit({ entries, appends }: SealedBatch): Promise<void> {
    try {
      await this.host.store.commit(
        entries,
        appends.map((a, i) => [a.requestId, { id: entries[i]!.id, digest: a.digest }]),
      );
    } catch (err) {
      this.host.appendsOnFailed(err, appends.length);
      for (const a of appends) a.reject(err);
      return;
    }
    appends.forEach((a, i) => a.resolve(appendResult(entries[i]!.entry, entries[i]!.id)));
    this.host.appendsOnCommitted(entries);
  }
}

/** What an append answers: the stored entry's id and place. */
export function appendResult(entry: Entry, id: string): AppendResult {
  return { id, author: entry.author, seq: entry.seq, ts: entry.ts };
}

interface Queued extends AppendRequest {
  resolve: (r: AppendResult) => void;
  reject: (err: unknown) => void;
}

/** Appends signed as one batch, chained from `prev` (our own head when it was signed). */
interface SealedBatch {
  appends: Queued[];
  entries: CheckedEntry[];
  prev: Head | undefined;
}

/** Our own feed's head once `batch` is stored: its last entry. */
function headAfter(batch: SealedBatch): Head {
  const last = batch.entries.at(-1)!;
  return { seq: last.entry.seq, id: last.id };
}
