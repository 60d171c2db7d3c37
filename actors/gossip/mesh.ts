/**
 * The gossiper's core: the peer table and the sync protocol, over the
 * listener (server.ts) and the dialer (dialer.ts); the grant flow rides the
 * same links (its frames are handled here too). The actor (actor.ts) wires it to the journal through a
 * JournalPort; nothing here touches LMDB or the key.
 *
 * Sync, and why it is shaped so:
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
 *    The journal verifies everything; an answer it refuses costs the peer.
 *  - What the journal appends (ours or ingested) comes back as an `appended`
 *    notice and is pushed on as `have` to every peer that lacks it: that is
 *    what carries an entry across the mesh in a few round trips.
 */
import type { WebSocket } from 'ws';
import type { AuthTranscript } from '../../runtime/crypto/index.js';
import type { GrantRequest, GrantResult } from '../../runtime/protocol/grants.js';
import type { GossipStatus } from '../../runtime/protocol/gossip.js';
import { ingestFault } from '../../runtime/protocol/journal.js';
import type { IngestResult, Proof } from '../../runtime/protocol/journal.js';
import {
  E,
  MeshError,
  banned,
  notAllowed,
  peerDuplicate,
  peersFull,
} from '../../runtime/errors.js';
import type { Logger } from '../../runtime/log.js';
import { encodeEntry, entryId } from '../../runtime/domain/codec.js';
import type { Entry } from '../../runtime/domain/codec.js';
import { Allowlist } from './allowlist.js';
import { vvFrames } from './frames.js';
import type { Frame, FrameOf } from './frames.js';
import { CLOSE, Peer } from './peer.js';
import type { PeerHost, PeerLimits } from './peer.js';
import type { DialerHost } from './dialer.js';
import { GrantRelay } from './grant-relay.js';
import { SelfSync } from './self-sync.js';
import type { GrantPort } from './grant-relay.js';
import type { ServerHost } from './server.js';
import { banDuration, charge, currentScore } from './scoring.js';
import { admission, recordsToDial } from './policy.js';
import type { NodeRecord } from './policy.js';
import type { Offence } from './scoring.js';
import { Dialer } from './dialer.js';
import { GossipServer } from './server.js';
import { ephemeralCertificate } from './tls.js';
import type { TlsMaterial } from './tls.js';

/** Answers waiting to be served per peer; more is a peer ignoring the protocol. */
const MAX_SERVING_QUEUE = 64;
/** Proofs sent to a new peer: enough for any real mesh, bounded for a hostile one. */
const MAX_PROOFS_SENT = 100;

/** The journal, as the gossiper uses it. */
export interface JournalPort {
  heads(): Promise<Record<string, number>>;
  range(author: string, from: number, to: number, limit: number): Promise<Entry[]>;
  ingest(entries: unknown[]): Promise<IngestResult>;
  signAuth(t: AuthTranscript): Promise<string>;
  /** A peer's proof: whether it proves a fork is the journal's check. */
  proof(p: { author: string; seq: number; entries: unknown[] }): Promise<{ recorded: boolean }>;
  proofs(): Promise<Proof[]>;
  /** Gossip endpoints announced in `node` records. */
  nodes(): Promise<Array<{ did: string; gossip: string }>>;
  selfSynced(): Promise<void>;
}

export type { GrantPort } from './grant-relay.js';

export interface MeshOptions extends PeerLimits {
  /** host:port to listen on; '' for none (dial only). */
  listen: string;
  path: string;
  peers: string[];
  mode: 'open' | 'closed';
  allowlist: string;
  maxPeers: number;
  maxPendingHandshakes: number;
  maxWantsInFlight: number;
  antiEntropyMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Follow the gossip endpoints of `node` records. */
  discover: boolean;
  /** ws:// instead of TLS 1.3 (config allows it on loopback only). */
  insecurePlaintext: boolean;
  /** Authenticated untrusted peers from one source IP. */
  maxPeersPerIp: number;
  /** Discovered (node record) dial targets held at once. */
  maxDialTargets: number;
  /** New outbound connections a second, all targets together. */
  dialRatePerS: number;
}

export class Mesh implements PeerHost, ServerHost, DialerHost {
  readonly peers = new Set<Peer>();
  readonly byDid = new Map<string, Peer>();
  readonly bans = new Map<string, { until: number; count: number; reason: string }>();
  readonly local = new Map<string, number>();
  /**
   * Head entry ids we know, with their seq. A peer's head at the same seq
   * with another id is an equivocation: we fetch its entry and the journal
   * proves it (seqs alone never show two branches of equal length).
   */
  private readonly localIds = new Map<string, { seq: number; id: string }>();
  /** Authors whose entry at our head a peer was asked for after a `prev` mismatch. */
  private readonly forkProbes = new WeakMap<Peer, Set<string>>();
  readonly frozen = new Set<string>();
  /** Whether our own feed's head is known from the peers (self-sync.ts). */
  private readonly selfSync: SelfSync;
  port = 0;
  private readonly pending = new Map<string, Peer>();
  readonly dialer: Dialer;
  private readonly allowlist: Allowlist | undefined;
  private readonly pendingHave = new Map<string, number>();
  private haveScheduled = false;
  private server: GossipServer | undefined;
  private tls: TlsMaterial | undefined;
  private tick: NodeJS.Timeout | undefined;
  stopped = false;
  readonly counters = {
    bans: 0,
    invalid: 0,
    ingested: 0,
    duplicates: 0,
    refusedUpgrades: 0,
    /** Node-record endpoints not dialed: unknown author, bad URL, or over max_dial_targets. */
    refusedDials: 0,
    /** Untrusted peers evicted to make room for a configured or allowlisted one. */
    evicted: 0,
    /** Peers cut because their send buffer went over its budget (4011). */
    slow: 0,
  };
  /** The consumer side's open grant exchanges, by request id. */
  /** The grant flow over our links (grant-relay.ts). */
  private readonly relay = new GrantRelay(this);
  /** The authorizer (provider side): set by the actor once it can ask it. */
  get grants(): GrantPort | undefined {
    return this.relay.grants;
  }
  set grants(port: GrantPort | undefined) {
    this.relay.grants = port;
  }

  constructor(
    readonly did: string,
    private readonly journal: JournalPort,
    private readonly options: MeshOptions,
    private readonly log: Logger,
  ) {
    if (options.mode === 'closed') this.allowlist = new Allowlist(options.allowlist);
    this.dialer = new Dialer(this, { ...options, configured: options.peers.length });
    this.selfSync = new SelfSync(this, journal, log);
  }

  async start(): Promise<void> {
    if (this.allowlist) this.refreshAllowlist();
    for (const [author, seq] of Object.entries(await this.journal.heads())) {
      this.local.set(author, seq);
    }
    for (const p of await this.journal.proofs()) this.frozen.add(p.author);
    if (!this.options.insecurePlaintext) this.tls = await ephemeralCertificate();
    void this.learnHeadIds();
    if (this.options.listen !== '') {
      this.server = new GossipServer(this, this.options, this.tls, this.log);
      await this.server.listen();
      this.port = this.server.port;
    }
    for (const url of this.options.peers) this.dialer.add(url, 'config');
    if (this.options.peers.length === 0) void this.selfSync.confirm();
    this.tick = setInterval(() => void this.antiEntropy(), this.options.antiEntropyMs);
    this.tick.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.tick);
    this.selfSync.stop();
    this.dialer.stop();
    for (const p of this.peers) p.close(CLOSE.shutdown, 'node stopping');
    await this.server?.close();
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
      for (const p of this.openPeers()) {
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

  openPeers(): Peer[] {
    return [...this.peers].filter((p) => p.state === 'open');
  }

  /** Plain data for the console and `meshnode peers`. */
  describe(): GossipStatus {
    const now = Date.now();
    return {
      did: this.did,
      listening: this.port,
      transport: this.tls ? 'tls1.3' : 'plaintext',
      sendBudgetBytes: this.sendBudget(),
      selfSynced: this.selfSync.synced,
      peers: [...this.peers].map((p) => ({
        did: p.did ?? null,
        address: p.address,
        url: p.url ?? null,
        direction: p.direction,
        state: p.state,
        connectedAt: p.connectedAt,
        lastSeen: p.lastSeen,
        score: Math.round(currentScore(p.score, now)),
        lag: this.lagOf(p),
        framesIn: p.framesIn,
        framesOut: p.framesOut,
        framesSkipped: p.framesSkipped,
        buffered: p.bufferedAmount,
        bytesIn: p.bytesIn,
        bytesOut: p.bytesOut,
      })),
      dialing: this.dialer.describe(),
      bans: [...this.bans].map(([did, b]) => ({ did, ...b })),
      frozen: [...this.frozen],
      counters: { ...this.counters },
    };
  }

  unban(did: string): boolean {
    return this.bans.delete(did);
  }

  /**
   * The operator drops a dial target: a discovered one is forgotten (and its
   * endpoint not taken again from its record until `undial` is undone by a
   * restart); a configured one cannot be (edit the config).
   */
  undial(url: string): { dropped: boolean; reason?: string } {
    const result = this.dialer.drop(url);
    if (result.dropped) {
      for (const p of this.peers) if (p.url === url) p.close(CLOSE.shutdown, 'dial target dropped');
    }
    return result;
  }

  // --- ServerHost, DialerHost -------------------------------------------------

  roomForHandshake(): boolean {
    const handshaking = [...this.peers].filter((p) => p.state === 'handshake').length;
    return (
      handshaking < this.options.maxPendingHandshakes && this.peers.size < this.options.maxPeers * 2
    );
  }

  serverOnSocket(ws: WebSocket, address: string): void {
    this.adopt(ws, 'in', address, undefined);
  }

  serverOnRefused(): void {
    this.counters.refusedUpgrades++;
  }

  isLinked(did: string): boolean {
    return this.byDid.get(did)?.state === 'open';
  }

  dialerOnSocket(ws: WebSocket, url: string): void {
    this.adopt(ws, 'out', url, url);
  }

  /**
   * Per-peer memory bound: what one peer can make us hold in its socket's
   * send queue. Answers wait at max_buffered_bytes (drained()); vv and have
   * frames are skipped past it; anything that would take a peer past twice
   * that plus one frame cuts it (4011). So the gossip heap's send side is at
   * most peers x sendBudget().
   */
  sendBudget(): number {
    return 2 * this.options.maxBufferedBytes + this.options.maxFrameBytes;
  }

  // --- PeerHost --------------------------------------------------------------

  signAuth(t: AuthTranscript): Promise<string> {
    return this.journal.signAuth(t);
  }

  admit(peer: Peer): MeshError | null {
    const did = peer.did!;
    const ban = this.bans.get(did);
    if (ban && ban.until > Date.now()) {
      return banned(ban.until);
    }
    if (this.allowlist) {
      this.refreshAllowlist();
      if (!this.allowlist.has(did)) return notAllowed('not on the allowlist');
    }
    const existing = this.byDid.get(did);
    if (existing && existing.state === 'open') {
      // Both ends apply the same rule, so both keep the same connection: the
      // one dialed by the smaller DID; between two from the same dialer, the newer.
      const keepNew =
        this.initiator(existing) === this.initiator(peer) ||
        this.initiator(peer) === (this.did < did ? this.did : did);
      if (!keepNew) return peerDuplicate('duplicate connection');
      existing.close(CLOSE.duplicate, 'duplicate connection: replaced');
    }
    return this.makeRoom(peer);
  }

  /** Slots (policy.ts admission): a trusted newcomer may evict; an untrusted one is capped. */
  private makeRoom(peer: Peer): MeshError | null {
    const trusted = this.trustedDids();
    const now = Date.now();
    const asSlot = (p: Peer) => ({
      peer: p,
      trusted: this.isTrusted(p, trusted),
      remoteIp: p.remoteIp,
      score: currentScore(p.score, now),
      connectedAt: p.connectedAt,
    });
    const open = this.openPeers()
      .filter((p) => p !== peer)
      .map(asSlot);
    const verdict = admission(asSlot(peer), open, {
      maxPeers: this.options.maxPeers,
      maxPerIp: this.options.maxPeersPerIp,
    });
    if (!verdict.admit) return peersFull(verdict.reason);
    if (verdict.evict) {
      this.counters.evicted++;
      verdict.evict.peer.close(CLOSE.full, 'evicted: a configured peer needs the slot');
    }
    return null;
  }

  /** A peer we dialed from config, one whose DID a configured dial proved, or an allowlisted one. */
  private isTrusted(peer: Peer, trusted: ReadonlySet<string>): boolean {
    if (peer.url && this.dialer.targets.get(peer.url)?.source === 'config') return true;
    return peer.did !== undefined && trusted.has(peer.did);
  }

  /** DIDs we have reason to trust: configured dial targets' (once proved), the allowlist. */
  private trustedDids(): Set<string> {
    const dids = new Set<string>();
    for (const d of this.dialer.targets.values())
      if (d.source === 'config' && d.did) dids.add(d.did);
    if (this.allowlist) for (const did of this.allowlist.dids()) dids.add(did);
    return dids;
  }

  peerOnOpen(peer: Peer): void {
    const did = peer.did!;
    this.byDid.set(did, peer);
    if (peer.url) {
      const d = this.dialer.targets.get(peer.url);
      if (d) d.did = did;
    }
    this.log.info(
      { peer: did, address: peer.address, direction: peer.direction },
      'peer connected',
    );
    for (const f of vvFrames(Object.fromEntries(this.local), this.headIds())) peer.send(f);
    void this.journal.proofs().then(
      (proofs) => {
        for (const p of proofs.slice(0, MAX_PROOFS_SENT)) peer.send(proofFrame(p));
      },
      () => {},
    );
  }

  peerOnFrame(peer: Peer, frame: Frame): void {
    switch (frame.t) {
      case 'vv':
      case 'have':
        this.peerOnHeads(peer, frame.heads, frame.ids);
        if (frame.t === 'vv' && !frame.more) {
          peer.vvComplete = true;
          this.selfSync.check();
        }
        return;
      case 'want':
        return this.peerOnWant(peer, frame);
      case 'entries':
        return this.peerOnEntries(peer, frame);
      case 'proof':
        return void this.peerOnProof(peer, frame);
      case 'grantHello':
        return void this.relay.peerOnGrantHello(peer, frame);
      case 'grantReq':
        return void this.relay.peerOnGrantReq(peer, frame);
      case 'grantNonce':
      case 'grantRes':
        return this.relay.peerOnGrantAnswer(peer, frame);
      default:
        this.peerOnOffence(peer, 'protocol', E.ERR_PROTOCOL(`unexpected ${frame.t}`));
    }
  }

  peerOnOffence(peer: Peer, offence: Offence, err: Error): void {
    const now = Date.now();
    const { state, ban } = charge(peer.score, offence, now);
    peer.score = state;
    this.log.warn(
      {
        peer: peer.did,
        address: peer.address,
        offence,
        code: (err as MeshError).code,
        err: err.message,
      },
      'peer offence',
    );
    if (!ban || !peer.did) return;
    const count = (this.bans.get(peer.did)?.count ?? 0) + 1;
    const until = now + banDuration(count);
    this.bans.set(peer.did, { until, count, reason: `${offence}: ${err.message}` });
    this.counters.bans++;
    peer.close(CLOSE.banned, `banned: ${offence}`);
  }

  peerOnClose(peer: Peer, code: number, reason: string): void {
    this.peers.delete(peer);
    if (code === CLOSE.slow) this.counters.slow++;
    this.relay.peerOnClose(peer, code);
    if (peer.did && this.byDid.get(peer.did) === peer) this.byDid.delete(peer.did);
    for (const author of peer.openWants.keys()) {
      if (this.pending.get(author) === peer) this.pending.delete(author);
    }
    peer.openWants.clear();
    if (peer.did) this.log.info({ peer: peer.did, code, reason }, 'peer disconnected');
    if (peer.url) this.dialer.linkOnClose(peer.url, peer.did, peer.connectedAt);
    for (const p of this.openPeers()) this.schedule(p);
  }

  // --- grant flow (grant-relay.ts) --------------------------------------------

  grantNonce(
    provider: string,
    url: string | undefined,
  ): Promise<{ rid: string; nonce: string; expiresAt: number }> {
    return this.relay.grantNonce(provider, url);
  }

  grantRequest(provider: string, rid: string, request: GrantRequest): Promise<GrantResult> {
    return this.relay.grantRequest(provider, rid, request);
  }

  // --- sync ------------------------------------------------------------------

  private peerOnHeads(
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
      const id = entryId(encodeEntry(entry as Entry));
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
      if (this.stopped) return;
      if (seq > 0 && this.localIds.get(author)?.seq !== seq) await this.idAt(author, seq);
    }
  }

  /** Ask `peer` for what it has and we lack, within the in-flight limits. */
  private schedule(peer: Peer): void {
    if (peer.state !== 'open') return;
    for (const author of peer.ahead) {
      if (peer.openWants.size >= this.options.maxWantsInFlight) return;
      const theirs = peer.heads.get(author) ?? 0;
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

  private peerOnWant(peer: Peer, want: FrameOf<'want'>): void {
    if (peer.serving.length >= MAX_SERVING_QUEUE) {
      this.peerOnOffence(peer, 'protocol', E.ERR_PROTOCOL('too many open wants'));
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
      peer.serving.shift();
    }
  }

  private peerOnEntries(peer: Peer, frame: FrameOf<'entries'>): void {
    const want = peer.openWants.get(frame.author);
    if (!want || want.from !== frame.from) {
      this.peerOnOffence(peer, 'protocol', E.ERR_PROTOCOL('entries nobody asked for'));
      return;
    }
    const mismatch = frame.entries.findIndex(
      (e, i) => e.author !== frame.author || e.seq !== frame.from + i,
    );
    if (mismatch >= 0 || frame.entries.length > want.to - want.from + 1) {
      this.release(peer, frame.author);
      peer.ahead.delete(frame.author);
      this.peerOnOffence(
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
      this.peerOnOffence(peer, 'emptyAnswer', E.ERR_PROTOCOL('empty answer'));
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
      this.counters.ingested += r.appended;
      this.counters.duplicates += r.duplicates;
      if (last > (this.local.get(frame.author) ?? 0)) this.local.set(frame.author, last);
    } catch (err) {
      failed = err as MeshError;
    }
    // Free the author's slot first: handling the error may ask this peer again.
    this.release(peer, frame.author);
    if (failed) this.ingestOnError(peer, frame, failed);
    this.selfSync.check();
    this.schedule(peer);
    // Other peers may have been waiting for this author's pending slot.
    for (const p of this.openPeers()) if (p !== peer) this.schedule(p);
  }

  private ingestOnError(peer: Peer, frame: FrameOf<'entries'>, err: MeshError): void {
    const author = frame.author;
    peer.ahead.delete(author);
    if (ingestFault(err.code) === 'forged') {
      this.counters.invalid++;
      this.peerOnOffence(peer, 'invalidEntry', err);
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
      this.peerOnOffence(peer, 'protocol', err);
    } else if (err.code === 'ERR_EQUIVOCATION') {
      this.frozen.add(author);
      this.peerOnOffence(peer, 'equivocation', err);
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

  private async peerOnProof(peer: Peer, frame: FrameOf<'proof'>): Promise<void> {
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
        this.peerOnOffence(peer, 'invalidEntry', err as Error);
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
    for (const peer of this.openPeers()) {
      for (const p of proofs.slice(0, MAX_PROOFS_SENT)) peer.send(proofFrame(p));
    }
  }

  private release(peer: Peer, author: string): void {
    peer.openWants.delete(author);
    if (this.pending.get(author) === peer) this.pending.delete(author);
  }

  private async antiEntropy(): Promise<void> {
    if (this.stopped) return;
    if (this.allowlist && this.refreshAllowlist()) {
      for (const p of this.openPeers()) {
        if (!this.allowlist.has(p.did!)) p.close(CLOSE.notAllowed, 'removed from the allowlist');
      }
    }
    this.expireWants(Date.now());
    // A target skipped because its DID was connected inbound is dialed again
    // once that link is gone.
    this.dialer.redialIdle();
    const frames = vvFrames(Object.fromEntries(this.local), this.headIds());
    for (const p of this.openPeers()) for (const f of frames) p.send(f);
    if (this.options.discover) {
      try {
        this.discover(await this.journal.nodes());
      } catch {
        // The journal is restarting; next tick.
      }
    }
  }

  /**
   * Dial the endpoints of node records, but only of authors we have reason
   * to (trustedDids: a record by anyone else could aim every node of the
   * mesh at any host), only in the narrow URL form (parseGossipUrl) and the
   * transport this node speaks, and at most max_dial_targets at once.
   */
  private discover(nodes: NodeRecord[]): void {
    const held = this.dialer.discoveredCount();
    const { dial, refused } = recordsToDial(nodes, {
      self: this.did,
      trusted: this.trustedDids(),
      linked: (did) => this.byDid.has(did),
      dialing: (url) => this.dialer.targets.has(url),
      dropped: this.dialer.dropped,
      tls: !this.options.insecurePlaintext,
      room: Math.max(0, this.options.maxDialTargets - held),
    });
    this.counters.refusedDials += refused;
    for (const r of dial) this.dialer.add(r.gossip, 'discovered', r.did);
  }

  /**
   * A want unanswered for an idle timeout frees its author's pull slot (one
   * per author across all peers): a peer that advertises a feed and then
   * never answers cannot stall it. Another peer is asked; the silent one
   * pays once per sweep, as for an empty answer.
   */
  private expireWants(now: number): void {
    const peers = this.openPeers();
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
        this.peerOnOffence(peer, 'emptyAnswer', err);
      }
    }
    for (const p of peers) this.schedule(p);
  }

  /** True if the list changed. */
  private refreshAllowlist(): boolean {
    const r = this.allowlist!.refresh();
    if (r.error) this.log.warn({ path: this.allowlist!.path, error: r.error }, 'allowlist kept');
    else if (r.changed) this.log.info({ dids: this.allowlist!.size }, 'allowlist loaded');
    return r.changed;
  }

  // --- connections -----------------------------------------------------------

  private initiator(p: Peer): string {
    return p.direction === 'out' ? this.did : p.did!;
  }

  private adopt(
    ws: WebSocket,
    direction: 'in' | 'out',
    address: string,
    url: string | undefined,
  ): void {
    const peer = new Peer(ws, direction, address, url, this, this.options);
    this.peers.add(peer);
  }

  private lagOf(p: Peer): Record<string, number> {
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

export { parseHostPort } from './server.js';
