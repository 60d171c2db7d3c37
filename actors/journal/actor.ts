/**
 * The journal writer actor (DESIGN §4): the only writer of the LMDB
 * environment and the only holder of the node's signing key.
 *
 * Write path, and why it is shaped so:
 *  - Every write (local appends and ingested batches) runs on one serial
 *    lane, one LMDB transaction at a time. A batch must never chain onto a
 *    commit that may still fail (disk full), so commits do not overlap.
 *  - Local appends are group-committed and pipelined (appender.ts). The
 *    dispatcher's concurrency for this actor is high so many appends can be
 *    waiting on one commit.
 *  - Ingested entries are checked on this thread (structure, schema, size),
 *    their signatures verified in parallel on a piscina pool (large batches)
 *    or inline (small ones: a pool round trip costs more than a few verifies),
 *    then chained against the heads and committed atomically on the lane.
 *  - Appends are idempotent by requestId: the request record is written in
 *    the same transaction as the entry, so a retry after a crash or timeout
 *    gets the same entry back.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import type { Piscina } from 'piscina';
import { Actor } from '../../runtime/actor.js';
import type { ActorContext } from '../../runtime/actor.js';
import {
  authBytes,
  authSigner,
  blake2b256Hex,
  generateKeyPair,
  loadFastHash,
  grantRequestBytes,
  readKeyFile,
  sign,
  writeKeyFile,
} from '../../runtime/crypto/index.js';
import type { AuthTranscript, KeyPair } from '../../runtime/crypto/index.js';
import type { EntryKind } from '../../runtime/domain/entries.js';
import { E, errorFromPayload, invalidOption } from '../../runtime/errors.js';
import { poolDefaults } from '../../runtime/pool.js';
import { VIEW_PAGE_ROWS } from '../../runtime/types.js';
import { journalProtocol } from '../../runtime/protocol/journal.js';
import type {
  AppendResult,
  HeadsPage,
  IngestResult,
  JournalStatus,
  Proof,
  ViewAnswer,
  appendRequest,
  proofRequest,
  signGrantRequestRequest,
  viewRequest,
} from '../../runtime/protocol/journal.js';
import type { z } from 'zod';
import { sigToString } from '../../runtime/domain/codec.js';
import type { Entry } from '../../runtime/domain/codec.js';
import { EquivocationError, StagedFeeds, StoredSignatureError, planBatch } from './feed.js';
import type { FeedPlan } from './feed.js';
import { Appender, appendResult } from './appender.js';
import { JournalStore, MAX_RANGE } from './store.js';
import {
  badSignature,
  checkAndVerify,
  checkBodyJson,
  checkEntry,
  signatureTips,
  signatureValid,
} from './validate.js';
import type { ChunkResult } from './verify-task.js';
import type { CheckedEntry } from './validate.js';
import { verifyJournal } from './verify.js';
import { SerialLane } from '../../runtime/serial-lane.js';

/** Entries per ingest ask (local appends batch by MAX_SEAL, appender.ts): bounds a transaction's size and a reply's. */
export const MAX_BATCH = 1000;
/** Most entries one ingest transaction takes (a few batches; see applyIngest). */
const MAX_GROUP = 4 * MAX_BATCH;
/** Below this many entries, verify inline: a pool round trip costs more than the verifies. */
const INLINE_VERIFY_BELOW = 48;
/**
 * The signature audit (entries taken on a later entry's signature get their
 * own checked) runs when ingest has been quiet this long: replication first,
 * then the audit, on the same pool (`options.auditIdleMs` overrides it)...
 */
const AUDIT_IDLE_MS = 200;
/** ...unless it has waited this long: under endless ingest it still makes progress. */
const AUDIT_MAX_DEFER_MS = 5000;
/** Entries per audit round: one pool pass and one mark transaction. */
const AUDIT_BATCH = 4000;
const utf8 = new TextEncoder();

// The writer hashes every entry it appends or ingests: WebAssembly BLAKE2b on this thread.
await loadFastHash();

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

function resultOf(plan: FeedPlan): IngestResult {
  return { appended: plan.appends.length, duplicates: plan.duplicates };
}

export default class JournalActor extends Actor {
  private store!: JournalStore;
  private key!: KeyPair;
  private pool: Promise<Piscina> | null = null;
  /** Every write, one at a time (consecutive tickets have no other write between them). */
  private readonly lane = new SerialLane();
  /** Ingested batches on the lane, not yet applied, in lane order. */
  private readonly ingests: QueuedIngest[] = [];
  private appender!: Appender;
  private readonly inflight = new Map<string, { digest: string; result: Promise<AppendResult> }>();
  private readonly subscribers = new Set<'gossip' | 'grants'>();
  /**
   * True until this node knows its own feed's head from a peer (set when
   * gossip has peers to ask): appending as ourselves from a restored, older
   * copy of the journal would fork our own feed.
   */
  private awaitingSelfHead = this.options.awaitSelfSync === true;
  private readonly appended = this.metrics.counter('journal_appends_total');
  private readonly ingested = this.metrics.counter('journal_ingested_total');
  private readonly equivocations = this.metrics.counter('journal_equivocations_total');
  private readonly commits = this.metrics.counter('journal_commits_total');
  /** Appends signed again: signed behind a commit that then failed (appender.ts). */
  private readonly resealed = this.metrics.counter('journal_appends_resealed_total');
  private readonly audited = this.metrics.counter('journal_audited_total');
  private readonly badSignatures = this.metrics.counter('journal_bad_signatures_total');
  private readonly auditIdleMs = auditIdleOption(this.options.auditIdleMs);
  private auditTimer: NodeJS.Timeout | null = null;
  private auditing = false;
  private lastIngestAt = 0;
  /** When the oldest audit work still waiting was first deferred (0: none waiting). */
  private auditWaitingSince = 0;
  private stopped = false;

  constructor(ctx: ActorContext) {
    super(ctx);
    this.serve(journalProtocol, {
      append: (req) => this.grantsOnAppend(req),
      ingest: (req) => this.gossipOnIngest(req),
      // Whole, or a page ({after?, limit}: authors in order, `next` to continue) for large meshes.
      heads: (req) =>
        req?.limit === undefined
          ? this.store.versionVector()
          : headsPage(this.store.versionVector(), req.after, req.limit),
      range: (req) => this.store.range(req.author, req.from, req.to, req.limit ?? MAX_RANGE),
      get: (req) => this.store.byId(req.id) ?? null,
      tail: (req) => this.store.tail(req?.after ?? 0, req?.limit ?? 100),
      view: (req) => this.anyOnView(req),
      verify: () => verifyJournal(this.store),
      // Only gossip and grants are authorities for it (runtime/protocol/journal.ts).
      subscribe: (_req, from) => void this.subscribers.add(from as 'gossip' | 'grants'),
      identity: () => ({ did: this.key.did }),
      status: () => this.adminOnStatus(),
      signAuth: (req) => this.gossipOnSignAuth(req),
      signGrantRequest: (req) => this.grantsOnSignGrantRequest(req),
      proof: (req) => this.gossipOnProof(req),
      proofs: () => this.store.equivocations().map(proofOf),
      selfSynced: () => this.selfHeadKnown('learned from a peer'),
      forceSelfHead: () => this.selfHeadKnown('forced by the operator'),
    });
  }

  override async init(): Promise<void> {
    const stateDir = resolve(String(this.options.stateDir ?? './var'));
    this.store = await JournalStore.open(join(stateDir, 'journal'));
    this.key = await loadOrCreateKey(String(this.options.keyFile ?? join(stateDir, 'node.key')));
    this.appender = new Appender({
      store: this.store,
      key: this.key,
      onLane: (job) => this.onLane(job),
      appendsOnCommitted: (entries) => {
        this.commits.inc();
        this.appended.inc(entries.length);
        this.notify(entries);
      },
      appendsOnFailed: (err, count) =>
        this.log.error({ err, entries: count }, 'append commit failed'),
      appendsOnResealed: (count) => this.resealed.inc(count),
    });
    this.log.info(
      { did: this.key.did, feeds: Object.keys(this.store.versionVector()).length },
      'journal open',
    );
    this.scheduleAudit();
  }

  override async stop(): Promise<void> {
    this.stopped = true;
    if (this.auditTimer) clearTimeout(this.auditTimer);
    // Everything accepted was drained by the dispatcher; wait for the lane's last commit.
    await this.lane.idle();
    await (await this.pool)?.destroy();
    await this.store?.close();
  }

  override inspectState(): unknown {
    return {
      did: this.key?.did,
      feeds: this.store ? Object.keys(this.store.versionVector()).length : 0,
      queued: this.appender?.queued ?? 0,
      subscribers: [...this.subscribers],
    };
  }

  private grantsOnAppend(
    req: z.output<typeof appendRequest>,
  ): Promise<AppendResult> | AppendResult {
    const { kind, body, requestId } = req;
    if (this.awaitingSelfHead) {
      throw E.ERR_SELF_SYNC_PENDING(
        'not appending as this node until its own feed head is learned from a peer (or forced)',
      );
    }
    if (this.store.isBlocked(this.key.did)) {
      // Our own feed holds a proven fork (a restore forced over a newer copy):
      // no node will accept anything more of it.
      throw E.ERR_EQUIVOCATION(
        "this node's own feed is stopped by an equivocation proof; it cannot append",
      );
    }
    const bodyJson = checkBodyJson(kind, body, 'append');
    const digest = blake2b256Hex(utf8.encode(`${kind}\n${bodyJson}`));
    const done = this.store.request(requestId) ?? this.inflight.get(requestId);
    if (done) {
      if (done.digest !== digest) {
        throw E.ERR_REQUEST_REUSED(`requestId ${requestId} was used for a different append`);
      }
      if ('result' in done) return done.result;
      return appendResult(this.store.byId(done.id)!, done.id);
    }
    const result = this.appender.append({
      kind: kind as EntryKind,
      body: body as Record<string, unknown>,
      bodyJson,
      requestId,
      digest,
    });
    this.inflight.set(requestId, { digest, result });
    const forget = () => this.inflight.delete(requestId);
    result.then(forget, forget);
    return result;
  }

  private gossipOnIngest(req: { entries: unknown[] }): Promise<IngestResult> {
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
      ticket: this.lane.tickets + 1,
      size: entries.length,
      checking: this.checkAll(entries),
    };
    p.checking.then(
      (checked) => (p.checked = checked),
      () => {},
    );
    this.ingests.push(p);
    return this.onLane(() => this.applyIngest(p));
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
  private async applyIngest(first: QueuedIngest): Promise<IngestResult> {
    // Taken into an earlier batch's group: that group's outcome is this one's.
    if (first.outcome) return first.outcome;
    this.ingests.splice(this.ingests.indexOf(first), 1);
    const checked = await first.checking;
    let plan: FeedPlan;
    try {
      plan = planBatch(checked, this.store);
    } catch (err) {
      if (err instanceof EquivocationError) await this.keepProof(err);
      if (err instanceof StoredSignatureError) await this.stopFeed(err.author, err.seq, err.bytes);
      throw err;
    }
    const group = [{ p: first, plan }];
    const staged = new StagedFeeds(this.store);
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
        : this.store.commit(appends).then(() => {
            this.commits.inc();
            this.ingested.inc(appends.length);
            this.notify(appends);
            this.lastIngestAt = Date.now();
            if (appends.some((c) => c.unverifiedSig)) this.scheduleAudit();
          });
    for (const { p, plan } of group.slice(1)) {
      p.outcome = committed.then(() => resultOf(plan));
      p.outcome.catch(() => {});
    }
    await committed;
    return resultOf(plan);
  }

  private async keepProof(err: EquivocationError): Promise<void> {
    await this.store.recordEquivocation(err.author, err.seq, err.existing, err.conflicting);
    this.equivocations.inc();
    this.log.warn({ author: err.author, seq: err.seq }, 'equivocation: feed stopped, proof kept');
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
    const results = await this.perThread(
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

  /** The verify pool (piscina is imported on first use: most journals never need it). */
  private poolOf(): Promise<Piscina> {
    this.pool ??= import('piscina').then(
      ({ Piscina }) =>
        new Piscina({
          ...poolDefaults,
          filename: new URL('./verify-task.js', import.meta.url).href,
          // No thread kept once idle: a pool thread is an isolate (~10 MB of RSS), and a
          // node that caught up once (or audited) should not carry it for good.
          minThreads: 0,
          maxThreads: availableParallelism(),
          // Batches commit in arrival order, so their checks must finish in
          // that order too. Without this, piscina puts a task it could not
          // hand out yet at the back of its queue: under a few batches in
          // flight the chunks of one batch finished last, every later batch
          // waited on it, and their commits ran at the end with the pool idle.
          stricterFIFO: true,
          idleTimeout: 30_000,
        }),
    );
    return this.pool;
  }

  /**
   * Run the signature audit soon if there is work: when ingest has been quiet
   * for auditIdleMs, or at the latest AUDIT_MAX_DEFER_MS after the work
   * first waited.
   */
  private scheduleAudit(): void {
    if (this.stopped || this.auditTimer || this.auditing || this.store.unaudited().size === 0)
      return;
    if (this.auditWaitingSince === 0) this.auditWaitingSince = Date.now();
    this.auditTimer = setTimeout(() => {
      this.auditTimer = null;
      const now = Date.now();
      const quiet = now - this.lastIngestAt >= this.auditIdleMs;
      if (!quiet && now - this.auditWaitingSince < AUDIT_MAX_DEFER_MS) {
        this.scheduleAudit();
        return;
      }
      this.auditing = true;
      this.auditChunk()
        .catch((err: unknown) => this.log.warn({ err }, 'signature audit failed; retrying later'))
        .finally(() => {
          this.auditing = false;
          this.auditWaitingSince = 0;
          this.scheduleAudit();
        });
    }, this.auditIdleMs);
    this.auditTimer.unref();
  }

  /**
   * Audit up to AUDIT_BATCH entries, across feeds: each one's own signature,
   * on the pool. A bad one stops its feed (the entry kept, ERR_FEED_STOPPED
   * from then on); the other feeds' audit marks move past what was checked,
   * all in one transaction.
   */
  private async auditChunk(): Promise<void> {
    const rows: Array<{ author: string; seq: number; bytes: Uint8Array }> = [];
    const next = new Map<string, number>();
    for (const [author, from] of this.store.unaudited()) {
      if (rows.length >= AUDIT_BATCH) break;
      if (this.store.isBlocked(author)) continue;
      const head = this.store.head(author)?.seq ?? 0;
      const got = this.store.rangeBytes(author, from, head, AUDIT_BATCH - rows.length);
      for (const r of got) rows.push({ author, seq: r.seq, bytes: r.bytes });
      next.set(author, got.length > 0 ? got.at(-1)!.seq + 1 : head + 1);
    }
    if (next.size === 0) return;
    const bad = rows.length === 0 ? -1 : await this.firstBadSignature(rows.map((r) => r.bytes));
    await this.onLane(async () => {
      if (bad >= 0) {
        const row = rows[bad]!;
        next.delete(row.author);
        await this.stopFeed(row.author, row.seq, row.bytes);
      }
      // Entries of other feeds after the bad one were not all looked at: those feeds wait.
      for (const r of rows.slice(bad < 0 ? rows.length : bad + 1)) next.delete(r.author);
      await this.store.markAudited(next);
      this.audited.inc(bad < 0 ? rows.length : bad);
    });
  }

  /** Index of the first of `items` (stored entries) whose own signature fails, or -1. */
  private async firstBadSignature(items: Uint8Array[]): Promise<number> {
    const results = await this.perThread(items.length, async (pool, from, to) => {
      const bad = (await pool.run(
        { items: items.slice(from, to) },
        { name: 'auditSignatures' },
      )) as number;
      return bad < 0 ? -1 : from + bad;
    });
    return results.find((b) => b >= 0) ?? -1;
  }

  /** `n` items cut into one chunk per pool thread, `run` on each at once; answers in chunk order. */
  private async perThread<R>(
    n: number,
    run: (pool: Piscina, from: number, to: number) => Promise<R>,
  ): Promise<R[]> {
    const pool = await this.poolOf();
    const size = Math.ceil(n / pool.maxThreads);
    const tasks: Promise<R>[] = [];
    for (let from = 0; from < n; from += size)
      tasks.push(run(pool, from, Math.min(n, from + size)));
    return Promise.all(tasks);
  }

  /** A stored entry's own signature is invalid: keep it, take nothing more of its feed. */
  private async stopFeed(author: string, seq: number, bytes: Uint8Array): Promise<void> {
    if (this.store.isBlocked(author)) return;
    await this.store.recordBadSignature(author, seq, bytes);
    this.badSignatures.inc();
    this.log.error(
      { author, seq },
      'signature audit: a stored entry has an invalid signature; its feed is stopped, the entry kept',
    );
  }

  /**
   * Sign a gossip handshake transcript as this node, in the role it states.
   * The context prefix makes it unusable as an entry signature; the shape is
   * checked whole (authTranscriptSchema), so nothing else is ever signed here.
   */
  private gossipOnSignAuth(t: AuthTranscript): string {
    if (authSigner(t) !== this.key.did) {
      throw E.ERR_BAD_REQUEST(`signAuth.${t.role}.did must be this node`);
    }
    return sigToString(sign(this.key, authBytes(t)));
  }

  /** Sign a grant request as this node (the consumer side of DESIGN §6 step 3). */
  private grantsOnSignGrantRequest(req: z.output<typeof signGrantRequestRequest>): {
    did: string;
    sig: string;
  } {
    const fields = { did: this.key.did, ...req };
    return { did: this.key.did, sig: sigToString(sign(this.key, grantRequestBytes(fields))) };
  }

  /**
   * An equivocation proof from a peer: two valid, different entries of one
   * author at one seq. Kept like one we found ourselves, and the feed stops.
   */
  private async gossipOnProof(req: z.output<typeof proofRequest>): Promise<{ recorded: boolean }> {
    const { author, seq, entries } = req;
    if (entries.length !== 2) {
      throw E.ERR_BAD_PROOF('a proof is two entries');
    }
    const [a, b] = entries.map((e, i) => checkAndVerify(e, `proof.entries[${i}]`));
    if (a!.entry.author !== author || b!.entry.author !== author) {
      throw E.ERR_BAD_PROOF('proof entries are not both by its author');
    }
    if (a!.entry.seq !== seq || b!.entry.seq !== seq || a!.id === b!.id) {
      throw E.ERR_BAD_PROOF('proof entries are not two different entries at its seq');
    }
    if (this.store.isBlocked(author)) return { recorded: false };
    await this.onLane(() => this.keepProof(new EquivocationError(author, seq, a!.bytes, b!.bytes)));
    return { recorded: true };
  }

  private selfHeadKnown(how: string): { head: number } {
    const head = this.store.head(this.key.did)?.seq ?? 0;
    if (this.awaitingSelfHead) this.log.info({ head, how }, 'own feed head known: appends open');
    this.awaitingSelfHead = false;
    return { head };
  }

  private anyOnView(req: z.output<typeof viewRequest>): ViewAnswer {
    // A page of at most VIEW_PAGE_ROWS (runtime/view-pages.ts reads them all).
    if (req.key === undefined) return this.store.viewAll(req.view, VIEW_PAGE_ROWS, req.after);
    return this.store.view(req.view, req.key) ?? null;
  }

  private adminOnStatus(): JournalStatus {
    return {
      did: this.key.did,
      feeds: Object.keys(this.store.versionVector()).length,
      entries: this.store.count(),
      equivocations: this.store.equivocations().length,
      badSignatures: this.store.badSignatureCount(),
      unaudited: this.unauditedCount(),
      queued: this.appender?.queued ?? 0,
      awaitingSelfHead: this.awaitingSelfHead,
    };
  }

  /** Entries whose own signature the audit has not checked yet (all feeds). */
  private unauditedCount(): number {
    let n = 0;
    for (const [author, from] of this.store.unaudited()) {
      // A stopped feed is audited no further.
      if (this.store.isBlocked(author)) continue;
      n += Math.max(0, (this.store.head(author)?.seq ?? 0) - from + 1);
    }
    return n;
  }

  private notify(entries: readonly CheckedEntry[]): void {
    if (entries.length === 0 || this.subscribers.size === 0) return;
    const summary = entries.map((c) => ({
      id: c.id,
      author: c.entry.author,
      seq: c.entry.seq,
      kind: c.entry.kind,
    }));
    for (const s of this.subscribers) this.tell(s, 'appended', { entries: summary });
  }

  /** Run `job` after every write before it; the lane never rejects (callers get the error). */
  private onLane<T>(job: () => Promise<T>): Promise<T> {
    return this.lane.run(job);
  }
}

function auditIdleOption(value: unknown): number {
  if (value === undefined) return AUDIT_IDLE_MS;
  if (!Number.isSafeInteger(value) || (value as number) <= 0)
    throw invalidOption('options.auditIdleMs', 'must be a positive integer');
  return value as number;
}

function proofOf(e: { author: string; seq: number; entries: [Entry, Entry] }): Proof {
  return { author: e.author, seq: e.seq, entries: e.entries };
}

/** The node's key: read it, or create it (0600) on the first start. Never logged. */
async function loadOrCreateKey(path: string): Promise<KeyPair> {
  if (existsSync(path)) return readKeyFile(path);
  const key = generateKeyPair();
  await writeKeyFile(path, key);
  return key;
}

/** One page of a version vector: authors sorted, those after `after`, at most `limit`. */
function headsPage(
  all: Record<string, number>,
  after: string | undefined,
  limit: number,
): HeadsPage {
  const authors = Object.keys(all)
    .sort()
    .filter((a) => after === undefined || a > after);
  const heads: Record<string, number> = {};
  for (const a of authors.slice(0, limit)) heads[a] = all[a]!;
  const more = authors.length > limit;
  return { heads, next: more ? authors[limit - 1]! : null };
}
