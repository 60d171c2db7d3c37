/**
 * The sync protocol, over the open peers the mesh (mesh.ts) keeps:
 *  - Each side sends its version vector (author → head seq) after the
 *    handshake and every anti-entropy period; a `have` pushes the heads of
 *    feeds that just grew. A peer whose head is beyond ours for an author is
 *    "ahead" for it.
 *  - We pull with `want` (one author's range, at most maxEntriesPerFrame).
 *    At most one want per author is open across all peers (`pending`), so
 *    two peers never race to hand us the same entries and an answer always
 *    starts at our head + 1. Different authors are pulled in parallel, up to
 *    maxWantsInFlight per peer.
 *  - A peer's answers are ingested one at a time in arrival order (its lane).
 *    The journal verifies everything; an answer it refuses costs the peer
 *    (which refusals are its fault: INGEST_FAULTS, runtime/protocol/journal.ts).
 *  - What the journal appends (ours or ingested) comes back as an `appended`
 *    notice and is pushed on as `have` to every peer that lacks it: that is
 *    what carries an entry across the mesh in a few round trips.
 *  - Heads carry their entry ids: a peer's head at our seq with another id
 *    is an equivocation, fetched so the journal can prove it.
 */
import { encodeEntry, entryId } from '../../runtime/domain/codec.js';
import { E } from '../../runtime/errors.js';
import type { MeshError } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/log.js';
import { ingestFault } from '../../runtime/protocol/journal.js';
import type { Proof } from '../../runtime/protocol/journal.js';
import { vvFrames } from './frames.js';
import type { FrameOf } from './frames.js';
import type { JournalPort } from './journal-port.js';
import type { Peer } from './peer.js';
import type { Offence } from './scoring.js';

/** Answers waiting to be served per peer; more is a peer ignoring the protocol. */
const MAX_SERVING_QUEUE = 64;
/** Proofs sent to a new peer: enough for any real mesh, bounded for a hostile one. */
const MAX_PROOFS_SENT = 100;

export interface SyncOptions {
  maxEntriesPerFrame: number;
  maxWantsInFlight: number;
  idleTimeoutMs: number;
}

/** What sync needs from the mesh. */
export interface SyncHost {
  readonly stopped: boolean;
  readonly counters: { invalid: number; ingested: number; duplicates: number };
  /** Open peers that sync (a joiner waiting for its redemption does not). */
  syncPeers(): Peer[];
  peerOnOffence(peer: Peer, offence: Offence, err: Error): void;
  /** Our feeds moved (an ingest, a complete vector): self-sync looks again. */
  syncOnProgress(): void;
}

export class Sync {
  /** Our head seq per feed. */
  readonly local = new Map<string, number>();
  /** Feeds stopped by an equivocation proof or the signature audit: not pulled. */
  readonly frozen = new Set<string>();
  /**
   * Head entry ids we know, with their seq. A peer's head at the same seq
   * with another id is an equivocation: we fetch its entry and the journal
   * proves it (seqs alone never show two branches of equal length).
   */
  private readonly localIds = new Map<string, { seq: number; id: string }>();
  /** Authors whose entry at our head a peer was asked for after a `prev` mismatch. */
  private readonly forkProbes = new WeakMap<Peer, Set<string>>();
  /** The peer each author's one open want went to. */
  private readonly pending = new Map<string, Peer>();
  private readonly pendingHave = new Map<string, number>();
  private haveScheduled = false;

  constructor(
    private readonly host: SyncHost,
    private readonly journal: JournalPort,
    private readonly options: SyncOptions,
    private readonly log: Logger,
  ) {}

  /** Expelled feeds: author → the last seq the journal keeps (nothing after it is pulled). */
  private readonly cuts = new Map<string, number>();

  /**
   * The membership's cuts, as the last seq kept (cut plus evidence window):
   * our head of each cut feed is at most that (the journal truncated it),
   * and nothing past it is asked for.
   */
  applyCuts(cuts: ReadonlyArray<{ did: string; seq: number }>): void {
    this.cuts.clear();
    for (const { did, seq } of cuts) {
      this.cuts.set(did, seq);
      const ours = this.local.get(did);
      if (ours !== undefined && ours > seq) {
        if (seq > 0) this.local.set(did, seq);
        else this.local.delete(did);
        this.localIds.delete(did);
      }
    }
  }

  /** Our heads and stopped feeds from the journal; head ids learnt in the background. */
  async load(): Promise<void> {
    for (const [author, seq] of Object.entries(await this.journal.heads())) {
      this.local.set(author, seq);
    }
    for (const p of await this.journal.proofs()) this.frozen.add(p.author);
    void this.learnHeadIds();
  }

  /** A new link: our vector, and the proofs we hold. */
  peerOnOpen(peer: Peer): void {
    for (const f of vvFrames(Object.fromEntries(this.local), this.headIds())) peer.send(f);
    void this.journal.proofs().then(
      (proofs) => {
        for (const p of proofs.slice(0, MAX_PROOFS_SENT)) peer.send(proofFrame(p));
      },
      () => {},
    );
  }

  /** Our vector to one peer (again: the inviter dropped it while our join was provisional). */
  sendVector(peer: Peer): void {
    for (const f of vvFrames(Object.fromEntries(this.local), this.headIds())) peer.send(f);
  }

  /** A link closed: its pull slots go to the other peers. */
  peerOnClose(peer: Peer): void {
    for (const author of peer.openWants.keys()) {
      if (this.pending.get(author) === peer) this.pending.delete(author);
    }
    peer.openWants.clear();
    for (const p of this.host.syncPeers()) this.schedule(p);
  }

  /** Every anti-entropy period: silent wants expire, every peer gets our vector. */
  antiEntropy(now: number): void {
    this.expireWants(now);
    const frames = vvFrames(Object.fromEntries(this.local), this.headIds());
    for (const p of this.host.syncPeers()) for (const f of frames) p.send(f);
  }

  /** The journal appended these (ours or ingested): tell the peers that lack them. */
  journalOnAppended(entries: Array<{ author: string; seq: number; id?: string }>): void {
    for (const { author, seq, id } of entries) {
      if (seq > (this.local.get(author) ?? 0)) this.local.set(author, seq);
      if (seq > (this.pendingHave.get(author) ?? 0)) this.pendingHave.set(author, seq);
      if (id && seq >= (this.localIds.get(author)?.seq ?? 0))
        this.localIds.set(author, { seq, id });
    }
    if (this.haveScheduled) return;
    this.haveScheduled = true;
    // Coalesce a burst of appends into one `have` per peer.
    setImmediate(() => {
      this.haveScheduled = false;
      const all = [...this.pendingHave];
      this.pendingHave.clear();
      const ids = this.headIds();
      for (const p of this.host.syncPeers()) {
        let heads: Record<string, number> = {};
        let haveIds: Record<string, string> = {};
        let n = 0;
        const flush = () => {
          p.send(
            Object.keys(haveIds).length > 0
              ? { t: 'have', heads, ids: haveIds }
              : { t: 'have', heads },
          );
          heads = {};
          haveIds = {};
          n = 0;
        };
        for (const [author, seq] of all) {
          if ((p.heads.get(author) ?? 0) >= seq) continue;
          heads[author] = seq;
          const id = ids.get(author);
          if (id !== undefined && this.local.get(author) === seq) haveIds[author] = id;
          if (++n === 1000) flush();
        }
        if (n > 0) flush();
      }
    });
  }

  peerOnHeads(
    peer: Peer,
    heads: Record<string, number>,
    ids: Record<string, string> | undefined,
  ): void {
    for (const [author, seq] of Object.entries(heads)) {
      if (seq > (peer.heads.get(author) ?? 0)) peer.heads.set(author, seq);
      const ours = this.local.get(author) ?? 0;
      if (seq > ours) peer.ahead.add(author);
      // Same seq as ours: the same entry, or two branches of equal length.
      const id = ids?.[author];
      if (id !== undefined && seq === ours && seq > 0 && !this.frozen.has(author)) {
        void this.compareHead(peer, author, seq, id);
      }
    }
    this.schedule(peer);
  }

  /** The peer's head at `seq` is `theirs`: if ours differs, fetch theirs (an equivocation). */
  private async compareHead(
    peer: Peer,
    author: string,
    seq: number,
    theirs: string,
  ): Promise<void> {
    const ours = await this.idAt(author, seq);
    if (ours === undefined || ours === theirs) return;
    this.log.warn({ author, seq, peer: peer.did }, 'a peer holds another entry at our head');
    this.probe(peer, author, seq);
  }

  /**
   * Ask `peer` for its entry at one `seq` we already hold: the answer goes to
   * the journal like any other, which keeps it as a proof if it differs from
   * ours. False if the author's pull slot is taken (the next vv tries again).
   */
  private probe(peer: Peer, author: string, seq: number): boolean {
    if (peer.state !== 'open' || this.frozen.has(author) || this.pending.has(author)) return false;
    this.pending.set(author, peer);
    peer.openWants.set(author, { from: seq, to: seq, sent: Date.now() });
    peer.send({ t: 'want', author, from: seq, to: seq });
    return true;
  }

  /** Our entry id at `seq` (cached for the head; read from the journal otherwise). */
  private async idAt(author: string, seq: number): Promise<string | undefined> {
    const known = this.localIds.get(author);
    if (known?.seq === seq) return known.id;
    try {
      const [entry] = await this.journal.range(author, seq, seq, 1);
      if (!entry) return undefined;
      const id = entryId(encodeEntry(entry));
      if (seq >= (this.localIds.get(author)?.seq ?? 0)) this.localIds.set(author, { seq, id });
      return id;
    } catch {
      return undefined;
    }
  }

  /** The ids of our heads we know (sent with vv and have so peers can compare). */
  private headIds(): Map<string, string> {
    const ids = new Map<string, string>();
    for (const [author, { seq, id }] of this.localIds) {
      if (this.local.get(author) === seq) ids.set(author, id);
    }
    return ids;
  }

  /** After a start: learn the ids of the heads on disk, one feed at a time, in the background. */
  private async learnHeadIds(): Promise<void> {
    for (const [author, seq] of [...this.local]) {
      if (this.host.stopped) return;
      if (seq > 0 && this.localIds.get(author)?.seq !== seq) await this.idAt(author, seq);
    }
  }

  /** Ask `peer` for what it has and we lack, within the in-flight limits. */
  private schedule(peer: Peer): void {
    if (peer.state !== 'open') return;
    for (const author of peer.ahead) {
      if (peer.openWants.size >= this.options.maxWantsInFlight) return;
      const theirs = Math.min(peer.heads.get(author) ?? 0, this.cuts.get(author) ?? Infinity);
      const ours = this.local.get(author) ?? 0;
      if (theirs <= ours || this.frozen.has(author)) {
        peer.ahead.delete(author);
        continue;
      }
      if (this.pending.has(author)) continue;
      const from = ours + 1;
      const to = Math.min(theirs, ours + this.options.maxEntriesPerFrame);
      this.pending.set(author, peer);
      peer.openWants.set(author, { from, to, sent: Date.now() });
      peer.send({ t: 'want', author, from, to });
    }
  }

  peerOnWant(peer: Peer, want: FrameOf<'want'>): void {
    if (peer.serving.length >= MAX_SERVING_QUEUE) {
      this.host.peerOnOffence(peer, 'protocol', E.ERR_PROTOCOL('too many open wants'));
      return;
    }
    peer.serving.push(want);
    if (peer.serving.length === 1) void this.serve(peer);
  }

  /** Answer a peer's wants one after another, never faster than its socket drains. */
  private async serve(peer: Peer): Promise<void> {
    while (peer.serving.length > 0) {
      const want = peer.serving[0]!;
      if (!(await peer.drained())) return;
      const limit = this.options.maxEntriesPerFrame;
      let entries: unknown[] = [];
      try {
        entries = await this.journal.range(
          want.author,
          want.from,
          Math.min(want.to, want.from + limit - 1),
          limit,
        );
      } catch (err) {
        this.log.warn({ err, peer: peer.did }, 'range read failed; answering empty');
      }
      peer.send({ t: 'entries', author: want.author, from: want.from, entries: entries as never });
      this.log.debug(
        { peer: peer.did, author: want.author, from: want.from, entries: entries.length },
        'want answered',
      );
      peer.serving.shift();
    }
  }

  peerOnEntries(peer: Peer, frame: FrameOf<'entries'>): void {
    const want = peer.openWants.get(frame.author);
    if (!want || want.from !== frame.from) {
      this.host.peerOnOffence(peer, 'protocol', E.ERR_PROTOCOL('entries nobody asked for'));
      return;
    }
    const mismatch = frame.entries.findIndex(
      (e, i) => e.author !== frame.author || e.seq !== frame.from + i,
    );
    if (mismatch >= 0 || frame.entries.length > want.to - want.from + 1) {
      this.release(peer, frame.author);
      peer.ahead.delete(frame.author);
      this.host.peerOnOffence(
        peer,
        'protocol',
        E.ERR_PROTOCOL('entries frame does not match its author and range'),
      );
      return;
    }
    if (frame.entries.length === 0) {
      // It claimed a head it cannot serve: believe the answer, not the claim.
      this.release(peer, frame.author);
      peer.heads.set(frame.author, frame.from - 1);
      peer.ahead.delete(frame.author);
      this.host.peerOnOffence(peer, 'emptyAnswer', E.ERR_PROTOCOL('empty answer'));
      this.schedule(peer);
      return;
    }
    want.answered = true;
    peer.lane
      .run(() => this.ingestAnswer(peer, frame))
      .catch((err: unknown) =>
        this.log.warn({ err, peer: peer.did }, 'ingesting an answer failed'),
      );
  }

  private async ingestAnswer(peer: Peer, frame: FrameOf<'entries'>): Promise<void> {
    const last = frame.from + frame.entries.length - 1;
    let failed: MeshError | undefined;
    try {
      const r = await this.journal.ingest(frame.entries);
      this.host.counters.ingested += r.appended;
      this.host.counters.duplicates += r.duplicates;
      this.log.debug(
        {
          peer: peer.did,
          author: frame.author,
          from: frame.from,
          appended: r.appended,
          duplicates: r.duplicates,
        },
        'entries ingested',
      );
      if (last > (this.local.get(frame.author) ?? 0)) this.local.set(frame.author, last);
    } catch (err) {
      failed = err as MeshError;
    }
    // Free the author's slot first: handling the error may ask this peer again.
    this.release(peer, frame.author);
    if (failed) this.ingestOnError(peer, frame, failed);
    this.host.syncOnProgress();
    this.schedule(peer);
    // Other peers may have been waiting for this author's pending slot.
    for (const p of this.host.syncPeers()) if (p !== peer) this.schedule(p);
  }

  private ingestOnError(peer: Peer, frame: FrameOf<'entries'>, err: MeshError): void {
    const author = frame.author;
    peer.ahead.delete(author);
    if (ingestFault(err.code) === 'forged') {
      this.host.counters.invalid++;
      this.host.peerOnOffence(peer, 'invalidEntry', err);
    } else if (ingestFault(err.code) === 'chain') {
      // A verified entry right after our head that does not link to it: its
      // author signed another entry at our head's seq (a fork of unequal
      // length). Ask for the peer's entry there, once: the journal proves it.
      const probed = this.forkProbes.get(peer) ?? new Set<string>();
      const head = this.local.get(author) ?? 0;
      if (
        err.code === 'ERR_PREV_MISMATCH' &&
        head > 0 &&
        frame.from === head + 1 &&
        !probed.has(author) &&
        this.probe(peer, author, head)
      ) {
        probed.add(author);
        this.forkProbes.set(peer, probed);
        return;
      }
      this.host.peerOnOffence(peer, 'protocol', err);
    } else if (err.code === 'ERR_EQUIVOCATION') {
      this.frozen.add(author);
      this.host.peerOnOffence(peer, 'equivocation', err);
      void this.spreadProofs();
    } else if (err.code === 'ERR_FEED_STOPPED') {
      // Our signature audit stopped this feed: the author's fault, not the
      // relaying peer's (it may not have audited yet). Stop asking for it.
      this.frozen.add(author);
    } else {
      // Our side (journal busy, restarting, disk full): not the peer's fault;
      // anti-entropy will ask again.
      this.log.warn({ err, author }, 'ingest failed on our side');
    }
  }

  async peerOnProof(peer: Peer, frame: FrameOf<'proof'>): Promise<void> {
    if (this.frozen.has(frame.author)) return;
    try {
      const { recorded } = await this.journal.proof({
        author: frame.author,
        seq: frame.seq,
        entries: frame.entries,
      });
      this.frozen.add(frame.author);
      if (recorded) void this.spreadProofs();
    } catch (err) {
      const code = (err as MeshError).code;
      if (ingestFault(code) === 'forged') {
        this.host.peerOnOffence(peer, 'invalidEntry', err as Error);
      }
    }
  }

  /** Send every proof we hold to every peer (proofs are few; a peer ignores known ones). */
  private async spreadProofs(): Promise<void> {
    let proofs: Proof[];
    try {
      proofs = await this.journal.proofs();
    } catch {
      return;
    }
    for (const p of proofs) this.frozen.add(p.author);
    for (const peer of this.host.syncPeers()) {
      for (const p of proofs.slice(0, MAX_PROOFS_SENT)) peer.send(proofFrame(p));
    }
  }

  private release(peer: Peer, author: string): void {
    peer.openWants.delete(author);
    if (this.pending.get(author) === peer) this.pending.delete(author);
  }

  /**
   * A want unanswered for an idle timeout frees its author's pull slot (one
   * per author across all peers): a peer that advertises a feed and then
   * never answers cannot stall it. Another peer is asked; the silent one
   * pays once per sweep, as for an empty answer.
   */
  private expireWants(now: number): void {
    const peers = this.host.syncPeers();
    for (const peer of peers) {
      let expired = 0;
      for (const [author, w] of peer.openWants) {
        w.sent ??= now;
        if (w.answered || now - w.sent < this.options.idleTimeoutMs) continue;
        this.release(peer, author);
        peer.ahead.delete(author);
        expired++;
      }
      if (expired > 0) {
        const err = E.ERR_PROTOCOL(`${expired} want(s) unanswered`);
        this.host.peerOnOffence(peer, 'emptyAnswer', err);
      }
    }
    for (const p of peers) this.schedule(p);
  }

  lagOf(p: Peer): Record<string, number> {
    const lag: Record<string, number> = {};
    for (const [author, seq] of p.heads) {
      const d = seq - (this.local.get(author) ?? 0);
      if (d !== 0) lag[author] = d;
    }
    return lag;
  }
}

/** A proof as a frame (entries as plain objects, which is what frames carry). */
function proofFrame(p: Proof): FrameOf<'proof'> {
  const [a, b] = p.entries;
  return { t: 'proof', author: p.author, seq: p.seq, entries: [{ ...a }, { ...b }] };
}
