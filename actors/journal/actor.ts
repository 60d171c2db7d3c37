/**
 * The journal writer actor (docs/design.md, the journal): the only writer
 * of the LMDB environment and the only holder of the node's signing key.
 * It serves runtime/protocol/journal.ts.
 *
 * Write path, and why it is shaped so:
 *  - Every write (local appends and ingested batches) runs on one serial
 *    lane, one LMDB transaction at a time. A batch must never chain onto a
 *    commit that may still fail (disk full), so commits do not overlap.
 *  - Local appends are group-committed and pipelined (appender.ts). The
 *    dispatcher's concurrency for this actor is high so many appends can be
 *    waiting on one commit.
 *  - Ingested batches (ingester.ts) are checked, their signatures verified
 *    on the pool (verify-pool.ts) or inline, then chained against the heads
 *    and committed atomically on the lane; entries taken on a later entry's
 *    signature get their own checked by the audit (audit.ts).
 *  - Appends are idempotent by requestId: the request record is written in
 *    the same transaction as the entry, so a retry after a crash or timeout
 *    gets the same entry back.
 */
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
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
import { E, invalidOption } from '../../runtime/errors.js';
import { FOUND_REQUEST_FILE, VIEW_PAGE_ROWS } from '../../runtime/types.js';
import { journalProtocol } from '../../runtime/protocol/journal.js';
import type {
  AppendResult,
  CatalogAnswer,
  catalogRequest,
  HeadsPage,
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
import { EquivocationError } from './feed.js';
import { Appender, appendResult } from './appender.js';
import { Directory } from './directory.js';
import { Catalog } from './catalog.js';
import { MEMBERSHIP_KINDS } from '../../runtime/domain/entries.js';
import { JournalStore, MAX_RANGE } from './store.js';
import { checkAndVerify, checkBodyJson } from './validate.js';
import { AUDIT_IDLE_MS, SignatureAudit } from './audit.js';
import { Ingester } from './ingester.js';
import { VerifyPool } from './verify-pool.js';
import type { CheckedEntry } from './validate.js';
import { verifyJournal } from './verify.js';
import { SerialLane } from '../../runtime/serial-lane.js';
import { Jobs } from '../../runtime/jobs.js';

const utf8 = new TextEncoder();

// The writer hashes every entry it appends or ingests: WebAssembly BLAKE2b on this thread.
await loadFastHash();

export default class JournalActor extends Actor {
  private store!: JournalStore;
  private key!: KeyPair;
  private readonly pool = new VerifyPool();
  /** Long operator work: `journal verify` as a job (runtime/jobs.ts). */
  private readonly jobs = new Jobs();
  /** Every write, one at a time (consecutive tickets have no other write between them). */
  private readonly lane = new SerialLane();
  private ingester!: Ingester;
  private audit!: SignatureAudit;
  private appender!: Appender;
  private directory!: Directory;
  /** The membership last told to subscribers (JSON), to tell only changes. */
  private toldMembership = '';
  private membershipScheduled = false;
  /** The directory as the catalog reads it; dropped at every commit. */
  private catalog: Catalog | undefined;
  /** Where `meshnode init --new-mesh` leaves a founding request. */
  private foundRequest = '';
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
  /** Entries removed from expelled feeds past their cut. */
  private readonly truncated = this.metrics.counter('journal_cut_entries_total');
  private readonly badSignatures = this.metrics.counter('journal_bad_signatures_total');
  private readonly auditIdleMs = auditIdleOption(this.options.auditIdleMs);

  constructor(ctx: ActorContext) {
    super(ctx);
    this.serve(journalProtocol, {
      append: (req) => this.grantsOnAppend(req),
      ingest: (req) => this.ingester.ingest(req),
      // Whole, or a page ({after?, limit}: authors in order, `next` to continue) for large meshes.
      heads: (req) =>
        req?.limit === undefined
          ? this.store.versionVector()
          : headsPage(this.store.versionVector(), req.after, req.limit),
      range: (req) => this.store.range(req.author, req.from, req.to, req.limit ?? MAX_RANGE),
      get: (req) => this.store.byId(req.id) ?? null,
      tail: (req) =>
        req?.last !== undefined
          ? this.store.tailLast(req.last)
          : this.store.tail(req?.after ?? 0, req?.limit ?? 100),
      view: (req) => this.anyOnView(req),
      verify: () => verifyJournal(this.store, { pool: this.pool }),
      verifyStart: () =>
        this.jobs.start('verify', (signal, progress) =>
          verifyJournal(this.store, { pool: this.pool, signal, progress }),
        ),
      job: ({ id }) => this.jobs.status(id),
      jobCancel: ({ id }) => this.jobs.cancel(id),
      // Only gossip and grants are authorities for it (runtime/protocol/journal.ts).
      subscribe: (_req, from) => void this.subscribers.add(from as 'gossip' | 'grants'),
      identity: () => ({ did: this.key.did }),
      status: () => this.adminOnStatus(),
      signAuth: (req) => this.gossipOnSignAuth(req),
      signGrantRequest: (req) => this.grantsOnSignGrantRequest(req),
      proof: (req) => this.gossipOnProof(req),
      proofs: () => this.store.equivocations().map(proofOf),
      selfSynced: () => this.selfHeadKnown('learned from a peer'),
      membership: () => this.store.membership().data,
      catalog: (req) => this.adminOnCatalog(req),
      found: (req) => this.directory.found(req),
      signInvite: (req) => this.directory.signInvite(req),
      redeemInvite: (req) => this.directory.redeem(req.token, req.did),
      expel: (req) => this.directory.expel(req.did),
      setMesh: (req) => this.directory.setMesh(req.mesh),
      announce: (req) => this.directory.announce(req),
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
        this.afterCommit();
      },
      appendsOnFailed: (err, count) =>
        this.log.error({ err, entries: count }, 'append commit failed'),
      appendsOnResealed: (count) => this.resealed.inc(count),
    });
    this.audit = new SignatureAudit(
      {
        store: this.store,
        pool: this.pool,
        onLane: (job) => this.onLane(job),
        stopFeed: (author, seq, bytes) => this.stopFeed(author, seq, bytes),
        audited: (count) => this.audited.inc(count),
        log: this.log,
      },
      this.auditIdleMs,
    );
    this.ingester = new Ingester({
      store: this.store,
      pool: this.pool,
      lane: this.lane,
      keepProof: (err) => this.keepProof(err),
      stopFeed: (author, seq, bytes) => this.stopFeed(author, seq, bytes),
      ingestOnCommitted: (appends) => {
        this.commits.inc();
        this.ingested.inc(appends.length);
        this.notify(appends);
        this.audit.ingestOnCommitted(appends.some((c) => c.unverifiedSig));
        this.afterCommit();
      },
    });
    this.directory = new Directory(
      this.store,
      this.key,
      async (kind, body, requestId) => this.appendAs(kind, body, requestId, true),
      () => this.afterCommit(),
    );
    await this.checkConfiguredMesh();
    this.foundRequest = join(stateDir, FOUND_REQUEST_FILE);
    if (!this.awaitingSelfHead) await this.foundRequested();
    this.toldMembership = JSON.stringify(this.store.membership().data);
    // Cuts that became effective while the node was down (or before a crash ended a truncation).
    await this.onLane(() => this.truncateOverCut());
    this.log.info(
      {
        did: this.key.did,
        feeds: Object.keys(this.store.versionVector()).length,
        mesh: this.store.meshId(),
      },
      'journal open',
    );
    this.audit.schedule();
  }

  override async stop(): Promise<void> {
    this.audit?.stop();
    this.jobs.cancelAll();
    // Everything accepted was drained by the dispatcher; wait for the lane's last commit.
    await this.lane.idle();
    await this.pool.destroy();
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
    return this.appendAs(req.kind, req.body, req.requestId, false);
  }

  /**
   * Append as this node. Membership entries come only through the directory
   * (`internal`): a raw `append` of one would skip its rights checks.
   */
  private appendAs(
    kind: string,
    body: unknown,
    requestId: string,
    internal: boolean,
  ): Promise<AppendResult> | AppendResult {
    if (!internal && MEMBERSHIP_KINDS.has(kind as EntryKind)) {
      throw E.ERR_BAD_REQUEST(
        `${kind} entries are written by mesh found, invite/join and expel, not by append`,
      );
    }
    if (this.store.membership().cutOf(this.key.did) !== undefined) {
      throw E.ERR_EXPELLED('this node was expelled from its mesh: no node takes its entries');
    }
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

  /**
   * After every commit: if it changed the membership, truncate feeds held
   * past a new cut and tell gossip and grants (links of expelled members
   * close, their grants go). Coalesced: one recomputation per burst.
   */
  private afterCommit(): void {
    this.catalog = undefined;
    if (this.membershipScheduled || !this.store.membershipStale()) return;
    this.membershipScheduled = true;
    setImmediate(() => {
      this.membershipScheduled = false;
      void this.onLane(() => this.truncateOverCut()).then(
        () => this.tellMembership(),
        (err: unknown) => this.log.error({ err }, 'truncating an expelled feed failed'),
      );
    });
  }

  private async truncateOverCut(): Promise<void> {
    for (const { author, cut, removed } of await this.store.truncateOverCut()) {
      this.truncated.inc(removed);
      this.log.warn({ author, cut, removed }, 'expelled feed cut: entries after its cut removed');
    }
  }

  private tellMembership(): void {
    this.catalog = undefined;
    const data = this.store.membership().data;
    const json = JSON.stringify(data);
    if (json === this.toldMembership) return;
    this.toldMembership = json;
    for (const s of this.subscribers) this.tell(s, 'membership', data);
  }

  /** A config naming a mesh (`mesh.id`) must name the one this journal belongs to. */
  private async checkConfiguredMesh(): Promise<void> {
    const configured = this.options.meshId;
    if (typeof configured !== 'string' || configured === '') return;
    const held = this.store.meshId();
    if (held === null) await this.store.setMeshId(configured);
    else if (held !== configured) {
      throw E.ERR_OTHER_MESH(
        `config mesh.id ${configured.slice(0, 12)} is not this journal's mesh ${held.slice(0, 12)}`,
      );
    }
  }

  private async keepProof(err: EquivocationError): Promise<void> {
    await this.store.recordEquivocation(err.author, err.seq, err.existing, err.conflicting);
    this.equivocations.inc();
    this.log.warn({ author: err.author, seq: err.seq }, 'equivocation: feed stopped, proof kept');
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

  /** Sign a grant request as this node (the consumer side of docs/design.md §6 step 3). */
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
    void this.foundRequested();
    return { head };
  }

  /** Carry out a founding `init --new-mesh` asked for, once appends are open. */
  private async foundRequested(): Promise<void> {
    if (!this.foundRequest || !existsSync(this.foundRequest)) return;
    try {
      if (this.store.meshId() === null) {
        const req = JSON.parse(readFileSync(this.foundRequest, 'utf8')) as {
          name: string;
          admission: 'open' | 'closed';
        };
        const r = await this.directory.found({ name: req.name, admission: req.admission });
        this.log.info({ mesh: r.mesh, name: req.name }, 'mesh founded (init --new-mesh)');
      }
      unlinkSync(this.foundRequest);
    } catch (err) {
      this.log.error({ err }, 'the founding asked by init --new-mesh failed; run mesh found');
    }
  }

  private anyOnView(req: z.output<typeof viewRequest>): ViewAnswer {
    // A page of at most VIEW_PAGE_ROWS (runtime/view-pages.ts reads them all).
    if (req.key === undefined) return this.store.viewAll(req.view, VIEW_PAGE_ROWS, req.after);
    return this.store.view(req.view, req.key) ?? null;
  }

  private adminOnCatalog(req: z.output<typeof catalogRequest>): CatalogAnswer {
    // One catalog (and its name cache) until the next commit: paging a big list reads each name once.
    const c = (this.catalog ??= new Catalog(this.store, this.store.membership(), this.key.did));
    switch (req.what) {
      case 'nodes':
        return c.nodes(req.after, req.limit);
      case 'services':
        return c.services(req.after, req.limit);
      case 'subscriptions':
        return c.subscriptions(req.after, req.limit);
      case 'members':
        return c.members();
    }
  }

  private adminOnStatus(): JournalStatus {
    const m = this.store.membership().data;
    return {
      did: this.key.did,
      mesh: {
        id: m.mesh,
        name: m.name,
        admission: m.admission,
        known: m.known,
        members: m.members.length,
        cuts: m.cuts.length,
      },
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
