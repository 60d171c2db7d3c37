/**
 * The gossiper's core: the peer table — who is linked, admission (bans,
 * duplicates, slots; the mesh's rule is gate.ts), offences and bans — over
 * the listener (server.ts) and the dialer (dialer.ts). Frames from open
 * peers go to the sync protocol (sync.ts), self-sync (self-sync.ts), the
 * grant flow (grant-relay.ts) and joins (join.ts); this node's record is
 * record.ts. The actor (actor.ts) wires it to the journal through a
 * JournalPort; nothing here touches LMDB or the key.
 */
import type { WebSocket } from 'ws';
import type { AuthTranscript } from '../../runtime/crypto/index.js';
import type { GrantRequest, GrantResult } from '../../runtime/protocol/grants.js';
import type { GossipStatus } from '../../runtime/protocol/gossip.js';
import {
  E,
  MeshError,
  banned,
  closeCodeOf,
  peerDuplicate,
  peersFull,
} from '../../runtime/errors.js';
import type { Logger } from '../../runtime/log.js';
import { Gate } from './gate.js';
import type { Frame } from './frames.js';
import type { JournalPort } from './journal-port.js';
import { CLOSE, Peer } from './peer.js';
import type { PeerHost, PeerLimits } from './peer.js';
import type { DialerHost } from './dialer.js';
import { GrantRelay } from './grant-relay.js';
import { SelfSync } from './self-sync.js';
import { Sync } from './sync.js';
import type { SyncHost } from './sync.js';
import type { GrantPort } from './grant-relay.js';
import type { ServerHost } from './server.js';
import { banDuration, charge, currentScore } from './scoring.js';
import { admission, recordsToDial } from './policy.js';
import { JoinFlow } from './join.js';
import type { JoinHost } from './join.js';
import type { Membership } from '../../runtime/domain/membership.js';
import { keptThrough } from '../../runtime/domain/membership.js';
import type { JoinResult } from '../../runtime/protocol/gossip.js';
import type { SignedInvite } from '../../runtime/protocol/journal.js';
import type { NodeRecord } from './policy.js';
import type { Offence } from './scoring.js';
import { Dialer } from './dialer.js';
import { GossipServer } from './server.js';
import { ephemeralCertificate } from './tls.js';
import { RecordAnnouncer } from './record.js';
import type { TlsMaterial } from './tls.js';

export type { JournalPort } from './journal-port.js';
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
  /** This node's record (docs/design.md §9): its name, version, and where peers reach it. */
  nodeName: string;
  version: string;
  /** The URL peers dial; '' derives it from `listen` when that names a concrete IP. */
  advertise: string;
  /** Append our record at all (a dial-only node may not want to be listed). */
  announce: boolean;
  /** The node's mesh IP; '' takes the advertised host when it is an IP. */
  meshIp: string;
}

export class Mesh implements PeerHost, ServerHost, DialerHost, SyncHost, JoinHost {
  readonly peers = new Set<Peer>();
  readonly byDid = new Map<string, Peer>();
  readonly bans = new Map<string, { until: number; count: number; reason: string }>();
  /** The sync protocol over the open peers (sync.ts). */
  private readonly sync: Sync;
  /** Whether our own feed's head is known from the peers (self-sync.ts). */
  private readonly selfSync: SelfSync;
  port = 0;
  readonly dialer: Dialer;
  /** Who may be linked (gate.ts). */
  private readonly gate: Gate;
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
  /** The grant flow over our links (grant-relay.ts). */
  private readonly relay = new GrantRelay(this);
  /** Joins, both sides (join.ts). */
  private readonly joins: JoinFlow;
  /** This node's own record (record.ts). */
  private readonly records: RecordAnnouncer;
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
    this.dialer = new Dialer(this, { ...options, configured: options.peers.length });
    this.gate = new Gate(options, this.dialer, log);
    this.sync = new Sync(this, journal, options, log);
    this.selfSync = new SelfSync(this, journal, log);
    this.joins = new JoinFlow(this, journal, log);
    this.records = new RecordAnnouncer(journal, log, options.announce);
  }

  /** The mesh this node belongs to, or null (none: an open directory). */
  get meshId(): string | null {
    return this.gate.meshId;
  }

  async start(): Promise<void> {
    this.gate.refreshAllowlist();
    this.setMembership(await this.journal.membership());
    await this.sync.load();
    if (!this.options.insecurePlaintext) this.tls = await ephemeralCertificate();
    if (this.options.listen !== '') {
      this.server = new GossipServer(this, this.options, this.tls, this.log);
      await this.server.listen();
      this.port = this.server.port;
    }
    this.records.listening(this.options, this.port, this.tls !== undefined);
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
    this.sync.journalOnAppended(entries);
  }

  /**
   * The membership changed (an invite redeemed, an expulsion): cut feeds
   * stop being pulled past their cut, and links that the rule no longer
   * admits close now — an expelled member's on every node.
   */
  journalOnMembership(data: Membership): void {
    this.setMembership(data);
    for (const p of this.openPeers()) {
      const refusal = this.gate.refusal(p);
      if (refusal) p.close(closeCodeOf(refusal), refusal.message);
    }
  }

  private setMembership(data: Membership): void {
    this.gate.setMembership(data);
    // Pulled as far as the journal keeps a cut feed: its cut and the evidence window.
    this.sync.applyCuts(data.cuts.map((c) => ({ did: c.did, seq: keptThrough(c.seq) })));
  }

  /** Sign an invite to this mesh with our gossip endpoint in it. */
  invite(req: {
    rights?: string[];
    expiresMs?: number;
    for?: string;
  }): Promise<SignedInvite & { endpoints: string[] }> {
    return this.joins.invite(req, this.records.record?.gossip);
  }

  /** Join the mesh of `token` through its inviter. */
  join(token: string, timeoutMs: number): Promise<JoinResult> {
    return this.joins.join(token, timeoutMs);
  }

  // --- JoinHost ----------------------------------------------------------------

  async joinOnJoined(): Promise<void> {
    this.journalOnMembership(await this.journal.membership());
    void this.announce();
  }

  joinOnRedeemed(peer: Peer): void {
    this.sync.peerOnOpen(peer);
  }

  joinOnAccepted(peer: Peer): void {
    this.sync.sendVector(peer);
  }

  inviteFor(url: string | undefined): string | undefined {
    return this.joins.inviteFor(url);
  }

  /** Our head seq per feed. */
  get local(): ReadonlyMap<string, number> {
    return this.sync.local;
  }

  /** Feeds stopped by an equivocation proof or the signature audit. */
  get frozen(): ReadonlySet<string> {
    return this.sync.frozen;
  }

  /** Open links that sync: not a joiner whose invite is still being redeemed. */
  syncPeers(): Peer[] {
    return this.openPeers().filter((p) => !p.joining);
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
      mesh: {
        id: this.meshId,
        name: this.gate.membership.data.name,
        admission: this.gate.closed ? 'closed' : 'open',
        known: this.gate.membership.data.known,
        members: this.gate.membership.data.members.length,
      },
      record: this.records.record,
      peers: [...this.peers].map((p) => ({
        did: p.did ?? null,
        address: p.address,
        url: p.url ?? null,
        direction: p.direction,
        state: p.state,
        connectedAt: p.connectedAt,
        lastSeen: p.lastSeen,
        score: Math.round(currentScore(p.score, now)),
        lag: this.sync.lagOf(p),
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

  // --- ServerHost, DialerHost, SyncHost --------------------------------------

  syncOnProgress(): void {
    this.selfSync.check();
    if (this.selfSync.synced) void this.announce();
  }

  /** Our record (record.ts), never before our own head is confirmed. */
  private async announce(): Promise<void> {
    if (this.selfSync.synced && !this.stopped) await this.records.announce(this.meshId);
  }

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
    this.gate.refreshAllowlist();
    const refusal = this.gate.refusal(peer);
    if (refusal) return refusal;
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
    const trusted = this.gate.trustedDids();
    const now = Date.now();
    const asSlot = (p: Peer) => ({
      peer: p,
      trusted: this.gate.isTrusted(p, trusted),
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
    // A joiner's frames wait for its redemption: an invite that fails gets nothing of the journal.
    if (peer.joining) return void this.joins.redeem(peer);
    this.sync.peerOnOpen(peer);
  }

  peerOnFrame(peer: Peer, frame: Frame): void {
    if (this.log.enabled('trace')) this.log.trace({ peer: peer.did, t: frame.t }, 'frame in');
    if (peer.joining) return;
    switch (frame.t) {
      case 'joinRes':
        return void this.joins.peerOnJoinRes(peer, frame);
      case 'vv':
      case 'have':
        this.sync.peerOnHeads(peer, frame.heads, frame.ids);
        if (frame.t === 'vv' && !frame.more) {
          peer.vvComplete = true;
          this.selfSync.check();
        }
        return;
      case 'want':
        return this.sync.peerOnWant(peer, frame);
      case 'entries':
        return this.sync.peerOnEntries(peer, frame);
      case 'proof':
        return void this.sync.peerOnProof(peer, frame);
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
    this.joins.peerOnClose(peer, code, reason);
    if (peer.did && this.byDid.get(peer.did) === peer) this.byDid.delete(peer.did);
    if (peer.did) this.log.info({ peer: peer.did, code, reason }, 'peer disconnected');
    if (peer.url) this.dialer.linkOnClose(peer.url, peer.did, peer.connectedAt, { code, reason });
    this.sync.peerOnClose(peer);
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

  private async antiEntropy(): Promise<void> {
    if (this.stopped) return;
    if (this.gate.refreshAllowlist()) {
      for (const p of this.openPeers()) {
        const refusal = this.gate.refusal(p);
        if (refusal) p.close(closeCodeOf(refusal), 'removed from the allowlist');
      }
    }
    void this.announce();
    // A target skipped because its DID was connected inbound is dialed again
    // once that link is gone.
    this.dialer.redialIdle();
    this.sync.antiEntropy(Date.now());
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
      trusted: this.gate.trustedDids(),
      linked: (did) => this.byDid.has(did),
      dialing: (url) => this.dialer.targets.has(url),
      dropped: this.dialer.dropped,
      tls: !this.options.insecurePlaintext,
      // Bounded by max_dial_targets, and by the peer slots still free: dialing
      // more members than max_peers would only make links the slot rule refuses.
      room: Math.max(
        0,
        Math.min(
          this.options.maxDialTargets - held,
          this.options.maxPeers - this.openPeers().length - this.dialer.pendingCount(),
        ),
      ),
    });
    this.counters.refusedDials += refused;
    for (const r of dial) this.dialer.add(r.gossip, 'discovered', r.did);
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
}

export { parseHostPort } from './server.js';
