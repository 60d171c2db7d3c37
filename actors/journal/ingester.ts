/**
 * The journal's ingest path: batches of entries a peer sent (through the
 * gossiper), checked and committed all or nothing.
 *
 *  - Entries are checked on the writer's thread (structure, schema, size)
 *    and their signatures verified in parallel on the pool for large batches,
 *    or inline for small ones (a pool round trip costs more than a few
 *    verifies); then chained against the heads and committed on the lane.
 *  - A batch takes its lane slot on arrival and is checked meanwhile, so
 *    batches apply in the order they arrived (each may extend the feeds of
 *    the one before) while their checks run in parallel.
 */
import { E, errorFromPayload } from '../../runtime/errors.js';
import type { Entry } from '../../runtime/domain/codec.js';
import type { IngestResult } from '../../runtime/protocol/journal.js';
import type { SerialLane } from '../../runtime/serial-lane.js';
import { EquivocationError, StagedFeeds, StoredSignatureError, planBatch } from './feed.js';
import type { FeedPlan } from './feed.js';
import type { JournalStore } from './store.js';
import { badSignature, checkEntry, signatureTips, signatureValid } from './validate.js';
import type { CheckedEntry } from './validate.js';
import type { ChunkResult } from './verify-task.js';
import type { VerifyPool } from './verify-pool.js';

/** Entries per ingest ask (local appends batch by MAX_SEAL, appender.ts): bounds a transaction's size and a reply's. */
export const MAX_BATCH = 1000;
/** Most entries one ingest transaction takes (a few batches; see apply). */
const MAX_GROUP = 4 * MAX_BATCH;
/** Below this many entries, verify inline: a pool round trip costs more than the verifies. */
const INLINE_VERIFY_BELOW = 48;

/** What the ingester needs from the journal actor. */
export interface IngesterHost {
  store: JournalStore;
  pool: VerifyPool;
  /** The journal's one write lane. */
  lane: SerialLane;
  /** Two entries of one author at one seq: keep the proof, stop the feed. */
  keepProof(err: EquivocationError): Promise<void>;
  /** A stored entry's own signature is invalid: stop its feed. */
  stopFeed(author: string, seq: number, bytes: Uint8Array): Promise<void>;
  /** A group of batches committed (count, notify, schedule the audit). */
  ingestOnCommitted(appends: CheckedEntry[]): void;
}

interface QueuedIngest {
  /** Its job's ticket on the lane. */
  ticket: number;
  size: number;
  checking: Promise<CheckedEntry[]>;
  /** Set once its checks pass. */
  checked?: CheckedEntry[];
  /** Set when an earlier batch's group took it in. */
  outcome?: Promise<IngestResult>;
}

export class Ingester {
  /** Ingested batches on the lane, not yet applied, in lane order. */
  private readonly ingests: QueuedIngest[] = [];

  constructor(private readonly host: IngesterHost) {}

  /** Check a batch (meanwhile), then apply it on the lane in arrival order. */
  ingest(req: { entries: unknown[] }): Promise<IngestResult> {
    const entries = req?.entries;
    // Trusted by type (runtime/protocol/journal.ts), checked cheaply all the same: the batch must be an array.
    if (!Array.isArray(entries)) throw E.ERR_BAD_REQUEST('ingest.entries must be an array');
    if (entries.length > MAX_BATCH) {
      throw E.ERR_TOO_LARGE(`ingest of ${entries.length} entries; the limit is ${MAX_BATCH}`);
    }
    // Take the lane slot now, check meanwhile: batches apply in the order
    // they arrived (each may extend the feeds of the one before) while their
    // checks run in parallel on the pool.
    const p: QueuedIngest = {
      ticket: this.host.lane.tickets + 1,
      size: entries.length,
      checking: this.checkAll(entries),
    };
    p.checking.then(
      (checked) => (p.checked = checked),
      () => {},
    );
    this.ingests.push(p);
    return this.host.lane.run(() => this.apply(p));
  }

  /**
   * Apply one ingested batch on the lane, and with it the batches right
   * behind it on the lane (no other write between them, up to MAX_GROUP
   * entries): one transaction for the group, so fewer commits (and fsyncs,
   * and random index pages rewritten) under a stream of batches; each batch
   * is still all or nothing. A follower whose checks fail, or that does not
   * plan cleanly on top of the group, is left to its own turn, where it
   * meets the committed state; a group whose commit fails fails all its
   * batches (nothing of them stored).
   */
  private async apply(first: QueuedIngest): Promise<IngestResult> {
    // Taken into an earlier batch's group: that group's outcome is this one's.
    if (first.outcome) return first.outcome;
    this.ingests.splice(this.ingests.indexOf(first), 1);
    const checked = await first.checking;
    let plan: FeedPlan;
    try {
      plan = planBatch(checked, this.host.store);
    } catch (err) {
      if (err instanceof EquivocationError) await this.host.keepProof(err);
      if (err instanceof StoredSignatureError)
        await this.host.stopFeed(err.author, err.seq, err.bytes);
      throw err;
    }
    const group = [{ p: first, plan }];
    const staged = new StagedFeeds(this.host.store);
    staged.add(plan.appends);
    let entries = first.size;
    while (this.ingests.length > 0) {
      const next = this.ingests[0]!;
      if (next.ticket !== first.ticket + group.length || entries + next.size > MAX_GROUP) break;
      // The next batch is already on the pool (checks run in arrival order):
      // waiting for it costs this group about one batch's checks, and the
      // commit it saves is worth more than that under a stream of batches.
      await next.checking.catch(() => {});
      if (next.checked === undefined) break;
      let nextPlan: FeedPlan;
      try {
        nextPlan = planBatch(next.checked, staged);
      } catch {
        break;
      }
      staged.add(nextPlan.appends);
      group.push({ p: next, plan: nextPlan });
      entries += next.size;
      this.ingests.shift();
    }
    const appends = group.flatMap((g) => g.plan.appends);
    const committed =
      appends.length === 0
        ? Promise.resolve()
        : this.host.store.commit(appends).then(() => this.host.ingestOnCommitted(appends));
    for (const { p, plan } of group.slice(1)) {
      p.outcome = committed.then(() => resultOf(plan));
      p.outcome.catch(() => {});
    }
    await committed;
    return resultOf(plan);
  }

  /**
   * Check untrusted entries: structure, schema, size and id of every one, and
   * the signature of each author's last entry in the batch (signatureTips;
   * the others ride on it, planBatch checks the links, the audit checks
   * their own later). Small batches inline; large ones on the pool, in one
   * chunk per thread, so the writer's thread only chains and commits. Throws
   * the refusal of the first bad entry: the batch is all or nothing.
   */
  private async checkAll(entries: unknown[]): Promise<CheckedEntry[]> {
    const tips = signatureTips(entries);
    if (entries.length < INLINE_VERIFY_BELOW) {
      return entries.map((e, i) => {
        const c = checkEntry(e, `entries[${i}]`);
        if (tips[i] === 0) c.unverifiedSig = true;
        else if (!signatureValid(c.entry, c.json)) throw badSignature(`entries[${i}]`);
        return c;
      });
    }
    const results = await this.host.pool.perThread(
      entries.length,
      (pool, from, to) =>
        pool.run({
          entries: entries.slice(from, to),
          offset: from,
          sigs: tips.subarray(from, to),
        }) as Promise<ChunkResult>,
    );
    const checked: CheckedEntry[] = new Array(entries.length);
    let i = 0;
    for (const r of results) {
      // Chunks are in entry order and each stops at its first refusal, so
      // the first refusal found here is the batch's first bad entry.
      if (!r.ok) throw errorFromPayload(r);
      let start = 0;
      for (let j = 0; j < r.ends.length; j++, i++) {
        const end = r.ends[j]!;
        checked[i] = {
          entry: entries[i] as Entry,
          id: r.ids.slice(j * 64, j * 64 + 64),
          bytes: r.bytes.subarray(start, end),
          ...(tips[i] === 0 ? { unverifiedSig: true as const } : {}),
        };
        start = end;
      }
    }
    return checked;
  }
}

function resultOf(plan: FeedPlan): IngestResult {
  const result: IngestResult = { appended: plan.appends.length, duplicates: plan.duplicates };
  if (plan.cut > 0) result.cut = plan.cut;
  return result;
}
