/**
 * The gossiper's core: the WebSocket server, the dialer, the peer table and
 * the sync protocol. The actor (actor.ts) wires it to the journal through a
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
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer } from 'node:net';
import type { Server as TcpServer, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
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
import { backoffDelay, banDuration, charge, currentScore, take } from './scoring.js';
import type { Bucket } from './scoring.js';
import { admission, recordsToDial } from './policy.js';
import type { NodeRecord } from './policy.js';
import type { Offence } from './scoring.js';
import { CLIENT_TLS, TLS_PINNED, ephemeralCertificate, sniffTls } from './tls.js';
import type { TlsMaterial } from './tls.js';

/** Answers waiting to be served per peer; more is a peer ignoring the protocol. */
const MAX_SERVING_QUEUE = 64;
/** A connection that lasted this long resets its dial backoff. */
const STABLE_LINK_MS = 10_000;
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

/** The grant authorizer, as the gossiper uses it (provider side). */
export interface GrantPort {
  challenge(peerDid: string): Promise<{ nonce: string; expiresAt: number }>;
  authorize(
    request: GrantRequest,
    seen: { peerDid: string; sourceIp: string; localIp: string; receivedAt: number },
  ): Promise<GrantResult>;
}

/**
 * A restored node learns its own feed's head from its peers before it
 * appends as itself (checkSelfSync). The first peer to answer may be stale:
 * the others configured get this long after that first answer to answer too.
 */
const SELF_SYNC_GRACE_MS = 5000;
/** While our own feed is still being pulled, self-sync is looked at again this often. */
const SELF_SYNC_RECHECK_MS = 1000;
/** How long a consumer waits for each step of the grant flow. */
const GRANT_STEP_MS = 10_000;

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

interface DialTarget {
  url: string;
  did?: string;
  /** For a discovered target: the author of the node record that named it. */
  author?: string;
  attempt: number;
  timer?: NodeJS.Timeout;
  socket?: WebSocket;
  source: 'config' | 'discovered';
}

export class Mesh implements PeerHost {
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
  selfSynced = false;
  /** When the first complete version vector came (0: none yet), and the grace timer. */
  private selfSyncHeardAt = 0;
  private selfSyncTimer: NodeJS.Timeout | undefined;
  port = 0;
  private readonly pending = new Map<string, Peer>();
  private readonly dials = new Map<string, DialTarget>();
  /** Discovered URLs the operator dropped (`undial`): not taken from records again. */
  private readonly dropped = new Set<string>();
  private readonly allowlist: Allowlist | undefined;
  private readonly pendingHave = new Map<string, number>();
  private haveScheduled = false;
  /** The listening socket; connections go on to `server` (HTTPS, or HTTP when plaintext). */
  private tcp: TcpServer | undefined;
  private server: Server | undefined;
  private tls: TlsMaterial | undefined;
  private wss: WebSocketServer | undefined;
  /** Accepted TCP connections that have not asked for the upgrade yet, with their deadlines. */
  private readonly unupgraded = new Map<Duplex, NodeJS.Timeout>();
  private tick: NodeJS.Timeout | undefined;
  private stopped = false;
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
  /** Shared by every dial: a flood of targets cannot become a flood of connections. */
  private dialBucket: Bucket = { tokens: 0, at: 0 };
  /** The consumer side's open grant exchanges, by request id. */
  private readonly grantWaits = new Map<
    string,
    { peer: Peer; resolve: (f: Frame) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  private nextRid = 1;
  grants: GrantPort | undefined;

  constructor(
    readonly did: string,
    private readonly journal: JournalPort,
    private readonly options: MeshOptions,
    private readonly log: Logger,
  ) {
    if (options.mode === 'closed') this.allowlist = new Allowlist(options.allowlist);
    // Configured peers all get their first dial at once.
    this.dialBucket = { tokens: this.dialBurst(), at: Date.now() };
  }

  async start(): Promise<void> {
    if (this.allowlist) this.refreshAllowlist();
    for (const [author, seq] of Object.entries(await this.journal.heads())) {
      this.local.set(author, seq);
    }
    for (const p of await this.journal.proofs()) this.frozen.add(p.author);
    if (!this.options.insecurePlaintext) this.tls = await ephemeralCertificate();
    void this.learnHeadIds();
    if (this.options.listen !== '') await this.listen();
    for (const url of this.options.peers) this.addDial(url, 'config');
    if (this.options.peers.length === 0) void this.markSelfSynced();
    this.tick = setInterval(() => void this.antiEntropy(), this.options.antiEntropyMs);
    this.tick.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.tick);
    clearTimeout(this.selfSyncTimer);
    for (const d of this.dials.values()) {
      clearTimeout(d.timer);
      d.socket?.terminate();
    }
    for (const p of this.peers) p.close(CLOSE.shutdown, 'node stopping');
    this.wss?.close();
    this.server?.close();
    await new Promise<void>((resolve) => (this.tcp ? this.tcp.close(() => resolve()) : resolve()));
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
      selfSynced: this.selfSynced,
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
      dialing: [...this.dials.values()].map((d) => ({
        url: d.url,
        did: d.did ?? null,
        attempt: d.attempt,
        source: d.source,
        author: d.author ?? null,
      })),
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
    const d = this.dials.get(url);
    if (!d) return { dropped: false, reason: 'no such dial target' };
    if (d.source === 'config') return { dropped: false, reason: 'configured in gossip.peers' };
    clearTimeout(d.timer);
    d.socket?.terminate();
    this.dials.delete(url);
    this.dropped.add(url);
    for (const p of this.peers) if (p.url === url) p.close(CLOSE.shutdown, 'dial target dropped');
    return { dropped: true };
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
    if (peer.url && this.dials.get(peer.url)?.source === 'config') return true;
    return peer.did !== undefined && trusted.has(peer.did);
  }

  /** DIDs we have reason to trust: configured dial targets' (once proved), the allowlist. */
  private trustedDids(): Set<string> {
    const dids = new Set<string>();
    for (const d of this.dials.values()) if (d.source === 'config' && d.did) dids.add(d.did);
    if (this.allowlist) for (const did of this.allowlist.dids()) dids.add(did);
    return dids;
  }

  peerOnOpen(peer: Peer): void {
    const did = peer.did!;
    this.byDid.set(did, peer);
    if (peer.url) {
      const d = this.dials.get(peer.url);
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
          this.checkSelfSync();
        }
        return;
      case 'want':
        return this.peerOnWant(peer, frame);
      case 'entries':
        return this.peerOnEntries(peer, frame);
      case 'proof':
        return void this.peerOnProof(peer, frame);
      case 'grantHello':
        return void this.peerOnGrantHello(peer, frame);
      case 'grantReq':
        return void this.peerOnGrantReq(peer, frame);
      case 'grantNonce':
      case 'grantRes':
        return this.peerOnGrantAnswer(peer, frame);
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
    for (const [rid, w] of this.grantWaits) {
      if (w.peer !== peer) continue;
      this.grantWaits.delete(rid);
      clearTimeout(w.timer);
      w.reject(E.ERR_PROTOCOL(`the link to the provider closed (${code})`));
    }
    if (peer.did && this.byDid.get(peer.did) === peer) this.byDid.delete(peer.did);
    for (const author of peer.openWants.keys()) {
      if (this.pending.get(author) === peer) this.pending.delete(author);
    }
    peer.openWants.clear();
    if (peer.did) this.log.info({ peer: peer.did, code, reason }, 'peer disconnected');
    if (peer.url) {
      const d = this.dials.get(peer.url);
      // The handshake proved who is behind this URL even if the link was then
      // refused (a duplicate of one the peer dialed): dial() skips a target
      // that is already connected, instead of redialing it forever.
      if (d && peer.did) d.did = peer.did;
      // A link that held for a while starts its backoff afresh; one that is
      // refused right after the handshake (ban, allowlist) keeps backing off.
      if (d && Date.now() - peer.connectedAt > STABLE_LINK_MS) d.attempt = 0;
      this.scheduleDial(peer.url);
    }
    for (const p of this.openPeers()) this.schedule(p);
  }

  // --- grant flow ------------------------------------------------------------

  /**
   * Consumer side, step 1: a nonce from `provider`, over the authenticated
   * link to it (dialing `url` first if there is none).
   */
  async grantNonce(
    provider: string,
    url: string | undefined,
  ): Promise<{ rid: string; nonce: string; expiresAt: number }> {
    const peer = await this.linkTo(provider, url);
    const rid = `g${this.nextRid++}`;
    const f = (await this.grantExchange(peer, { t: 'grantHello', rid })) as FrameOf<'grantNonce'>;
    if (f.t !== 'grantNonce') throw E.ERR_PROTOCOL('provider answered out of turn');
    return { rid, nonce: f.nonce, expiresAt: f.expiresAt };
  }

  /** Consumer side, step 2: the signed request; resolves with the provider's decision. */
  async grantRequest(provider: string, rid: string, request: GrantRequest): Promise<GrantResult> {
    const peer = this.byDid.get(provider);
    if (!peer || peer.state !== 'open') {
      throw E.ERR_PROTOCOL('the link to the provider closed during the request');
    }
    const f = (await this.grantExchange(peer, {
      t: 'grantReq',
      rid,
      ...request,
    })) as FrameOf<'grantRes'>;
    if (f.t !== 'grantRes') throw E.ERR_PROTOCOL('provider answered out of turn');
    const { t: _t, rid: _rid, ...result } = f;
    return result;
  }

  private grantExchange(peer: Peer, frame: Frame): Promise<Frame> {
    const rid = (frame as { rid: string }).rid;
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.grantWaits.delete(rid);
        reject(E.ERR_TIMEOUT(`provider did not answer ${frame.t} in time`));
      }, GRANT_STEP_MS);
      this.grantWaits.set(rid, { peer, resolve, reject, timer });
      if (!peer.send(frame)) {
        clearTimeout(timer);
        this.grantWaits.delete(rid);
        reject(E.ERR_PROTOCOL('the link to the provider is closed'));
      }
    });
  }

  /** An open link to `did`: the existing one, or a dial of `url` awaited. */
  private async linkTo(did: string, url: string | undefined): Promise<Peer> {
    const open = this.byDid.get(did);
    if (open?.state === 'open') return open;
    if (!url) throw E.ERR_PROTOCOL(`no link to ${did} and no endpoint to dial`);
    this.addDial(url, 'discovered', did);
    const d = this.dials.get(url)!;
    if (!d.socket && !d.timer) this.dial(d);
    const end = Date.now() + GRANT_STEP_MS;
    while (Date.now() < end) {
      const p = this.byDid.get(did);
      if (p?.state === 'open') return p;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw E.ERR_TIMEOUT(`could not reach ${did} at ${url}`);
  }

  private peerOnGrantAnswer(peer: Peer, frame: FrameOf<'grantNonce'> | FrameOf<'grantRes'>): void {
    const wait = this.grantWaits.get(frame.rid);
    if (!wait || wait.peer !== peer) {
      this.peerOnOffence(peer, 'protocol', E.ERR_PROTOCOL(`unsolicited ${frame.t}`));
      return;
    }
    this.grantWaits.delete(frame.rid);
    clearTimeout(wait.timer);
    wait.resolve(frame);
  }

  /** Provider side, step 1: a fresh single-use nonce from the authorizer. */
  private async peerOnGrantHello(peer: Peer, frame: FrameOf<'grantHello'>): Promise<void> {
    if (!this.grants)
      return void peer.send({
        t: 'grantRes',
        rid: frame.rid,
        ok: false,
        code: 'ERR_UNAVAILABLE',
        reason: 'grants are not served here',
      });
    try {
      const { nonce, expiresAt } = await this.grants.challenge(peer.did!);
      peer.send({ t: 'grantNonce', rid: frame.rid, nonce, expiresAt });
    } catch (err) {
      peer.send({
        t: 'grantRes',
        rid: frame.rid,
        ok: false,
        code: (err as MeshError).code ?? 'ERR_HANDLER',
        reason: 'no nonce',
      });
    }
  }

  /** Provider side, step 2: the authorizer decides; the answer goes back on the same link. */
  private async peerOnGrantReq(peer: Peer, frame: FrameOf<'grantReq'>): Promise<void> {
    // When the request arrived, on a clock all threads share: the authorizer
    // measures "request received → IP in the kernel set" from here.
    const receivedAt = performance.timeOrigin + performance.now();
    const { t: _t, rid, ...request } = frame;
    let result: GrantResult;
    try {
      if (!this.grants) throw E.ERR_UNAVAILABLE('grants are not served here');
      result = await this.grants.authorize(request, {
        peerDid: peer.did!,
        sourceIp: peer.remoteIp,
        localIp: peer.localIp,
        receivedAt,
      });
    } catch (err) {
      result = {
        ok: false,
        code: (err as MeshError).code ?? 'ERR_HANDLER',
        reason: 'the authorizer failed',
      };
    }
    peer.send({ t: 'grantRes', rid, ...result });
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
    this.checkSelfSync();
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

  /**
   * A restored node must not append as itself before it knows its own feed's
   * head, or it forks its feed. It waits for complete version vectors, pulls
   * whatever of its own feed any of those peers has, and confirms once every
   * configured peer has answered — or SELF_SYNC_GRACE_MS after the first
   * answer, for peers that are down. Trusting the first answer alone let a
   * stale peer (one that missed our latest entries) unlock appends at a seq
   * another peer already holds. A peer that claims more of our feed than it
   * serves stops counting once its want fails (empty or unanswered: `ahead`
   * is dropped), so it cannot hold appends back for good.
   */
  private checkSelfSync(): void {
    if (this.selfSynced) return;
    const heard = this.openPeers().filter((p) => p.vvComplete);
    if (heard.length === 0) return;
    this.selfSyncHeardAt ||= Date.now();
    const ours = this.local.get(this.did) ?? 0;
    const pulling = heard.some((p) => p.ahead.has(this.did) && (p.heads.get(this.did) ?? 0) > ours);
    const waited = Date.now() - this.selfSyncHeardAt;
    if (pulling || (waited < SELF_SYNC_GRACE_MS && !this.everyConfiguredPeerHeard(heard))) {
      // Look again at the deadline, or soon while pulling (a failed pull calls nobody back).
      this.selfSyncTimer ??= setTimeout(
        () => {
          this.selfSyncTimer = undefined;
          this.checkSelfSync();
        },
        Math.max(SELF_SYNC_GRACE_MS - waited, SELF_SYNC_RECHECK_MS),
      );
      this.selfSyncTimer.unref();
      return;
    }
    void this.markSelfSynced();
  }

  /** Each configured dial target (other than ourselves) is an open peer with a complete vv. */
  private everyConfiguredPeerHeard(heard: Peer[]): boolean {
    for (const d of this.dials.values()) {
      if (d.source !== 'config' || d.did === this.did) continue;
      if (!heard.some((p) => p.url === d.url || (d.did !== undefined && p.did === d.did)))
        return false;
    }
    return true;
  }

  private async markSelfSynced(): Promise<void> {
    if (this.selfSynced) return;
    this.selfSynced = true;
    try {
      await this.journal.selfSynced();
      this.log.info({ head: this.local.get(this.did) ?? 0 }, 'own feed head confirmed');
    } catch (err) {
      this.selfSynced = false;
      this.log.warn({ err }, 'could not confirm own feed head to the journal');
    }
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
    for (const d of this.dials.values()) if (!d.socket && !d.timer) this.dial(d);
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
    const held = [...this.dials.values()].filter((d) => d.source === 'discovered').length;
    const { dial, refused } = recordsToDial(nodes, {
      self: this.did,
      trusted: this.trustedDids(),
      linked: (did) => this.byDid.has(did),
      dialing: (url) => this.dials.has(url),
      dropped: this.dropped,
      tls: !this.options.insecurePlaintext,
      room: Math.max(0, this.options.maxDialTargets - held),
    });
    this.counters.refusedDials += refused;
    for (const r of dial) this.addDial(r.gossip, 'discovered', r.did);
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

  private async listen(): Promise<void> {
    const { host, port } = parseHostPort(this.options.listen);
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.options.maxFrameBytes,
      perMessageDeflate: false,
    });
    const answer426: Parameters<typeof createHttpServer>[1] = (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' });
      res.end('meshnode gossip: WebSocket only\n');
    };
    const server = this.tls
      ? createHttpsServer({ ...this.tls, ...TLS_PINNED }, answer426)
      : createHttpServer(answer426);
    this.server = server;
    server.headersTimeout = this.options.handshakeTimeoutMs;
    server.requestTimeout = this.options.handshakeTimeoutMs;
    server.on('upgrade', (req, socket, head) => this.serverOnUpgrade(req, socket, head));
    // A failed TLS handshake (TLS 1.2 client, garbage) ends that socket only.
    server.on('tlsClientError', (_err, socket: Duplex) => socket.destroy());
    // We own the listening socket, so a connection is counted (and cut if
    // it never upgrades) before TLS or HTTP sees a byte of it.
    this.tcp = createTcpServer((socket) => this.tcpOnConnection(socket));
    await new Promise<void>((resolve, reject) => {
      this.tcp!.once('error', reject);
      this.tcp!.listen(port, host, () => resolve());
    });
    const addr = this.tcp.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
    this.log.info(
      { host, port: this.port, path: this.options.path, tls: Boolean(this.tls) },
      'gossip listening',
    );
  }

  /**
   * Node's header timeout does not cut a client that connects and sends
   * nothing, and every held socket is a file descriptor of the whole node:
   * a connection that has not asked for the upgrade within a handshake
   * timeout is cut, and past maxPendingHandshakes of them a new one is cut
   * at once.
   */
  private tcpOnConnection(socket: Socket): void {
    socket.on('error', () => {});
    if (this.stopped || this.unupgraded.size >= this.options.maxPendingHandshakes) {
      this.counters.refusedUpgrades++;
      socket.destroy();
      return;
    }
    const timer = setTimeout(() => socket.destroy(), this.options.handshakeTimeoutMs);
    timer.unref();
    this.unupgraded.set(socket, timer);
    socket.once('close', () => this.settleConnection(socket));
    if (!this.tls) return void this.server!.emit('connection', socket);
    sniffTls(socket, (s) => this.server!.emit('connection', s));
  }

  private settleConnection(socket: Duplex): void {
    clearTimeout(this.unupgraded.get(socket));
    this.unupgraded.delete(socket);
  }

  private serverOnUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Over TLS the upgrade comes on the TLS socket; the deadline is on the TCP one under it.
    this.settleConnection((socket as Duplex & { _parent?: Duplex })._parent ?? socket);
    socket.on('error', () => {});
    const reject = (status: number, text: string) => {
      this.counters.refusedUpgrades++;
      // Closed once written: a refused client that never hangs up holds nothing.
      socket.end(
        `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
        () => socket.destroy(),
      );
    };
    if ((req.url ?? '').split('?')[0] !== this.options.path) return reject(404, 'Not Found');
    if (this.stopped) return reject(503, 'Service Unavailable');
    const handshaking = [...this.peers].filter((p) => p.state === 'handshake').length;
    if (
      handshaking >= this.options.maxPendingHandshakes ||
      this.peers.size >= this.options.maxPeers * 2
    ) {
      return reject(503, 'Service Unavailable');
    }
    this.wss!.handleUpgrade(req, socket, head, (ws) => {
      this.adopt(ws, 'in', req.socket.remoteAddress ?? '?', undefined);
    });
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

  /** Every configured peer may be dialed at once; beyond that the rate applies. */
  private dialBurst(): number {
    return Math.max(this.options.peers.length, this.options.dialRatePerS, 1);
  }

  private addDial(url: string, source: DialTarget['source'], did?: string): void {
    if (this.dials.has(url)) return;
    const d: DialTarget = {
      url,
      attempt: 0,
      source,
      ...(did ? { did } : {}),
      ...(did && source === 'discovered' ? { author: did } : {}),
    };
    this.dials.set(url, d);
    this.dial(d);
  }

  private dial(d: DialTarget): void {
    if (this.stopped || d.socket || d.timer) return;
    if (d.did && (d.did === this.did || this.byDid.get(d.did)?.state === 'open')) return;
    const now = Date.now();
    const taken = take(this.dialBucket, 1, this.options.dialRatePerS, this.dialBurst(), now);
    this.dialBucket = taken.bucket;
    if (!taken.ok) {
      // Over the dial rate: try again when a token is due, without growing the backoff.
      d.timer = setTimeout(
        () => {
          d.timer = undefined;
          this.dial(d);
        },
        Math.ceil(1000 / this.options.dialRatePerS),
      );
      d.timer.unref();
      return;
    }
    const ws = new WebSocket(d.url, {
      maxPayload: this.options.maxFrameBytes,
      handshakeTimeout: this.options.handshakeTimeoutMs,
      perMessageDeflate: false,
      ...CLIENT_TLS,
    });
    d.socket = ws;
    ws.on('error', () => {});
    ws.once('open', () => {
      d.socket = undefined;
      this.adopt(ws, 'out', d.url, d.url);
    });
    ws.once('close', () => {
      // Only a close before 'open' lands here with d.socket set: the dial failed.
      if (d.socket === ws) {
        d.socket = undefined;
        this.scheduleDial(d.url);
      }
    });
  }

  private scheduleDial(url: string): void {
    const d = this.dials.get(url);
    if (!d || this.stopped || d.timer) return;
    const delay = backoffDelay(d.attempt++, this.options.backoffBaseMs, this.options.backoffMaxMs);
    d.timer = setTimeout(() => {
      d.timer = undefined;
      this.dial(d);
    }, delay);
    d.timer.unref();
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

/** "host:port" or "[v6]:port". */
export function parseHostPort(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s);
  if (!m || Number(m[3]) > 65535) {
    throw E.ERR_INVALID_OPTION(`listen address ${s} must be host:port`);
  }
  return { host: (m[1] ?? m[2])!, port: Number(m[3]) };
}

/** A proof as a frame (entries as plain objects, which is what frames carry). */
function proofFrame(p: Proof): FrameOf<'proof'> {
  const [a, b] = p.entries;
  return { t: 'proof', author: p.author, seq: p.seq, entries: [{ ...a }, { ...b }] };
}
