/**
 * The sync gossiper actor (docs/design.md §5): the node's WebSocket face to the
 * mesh. The protocol lives in mesh.ts (sync) and peer.ts (one connection);
 * this shell wires it to the journal — every entry a peer hands over goes
 * to the journal's `ingest`, which verifies it; gossip never appends — and
 * answers the operator.
 */
import { Actor } from '../../runtime/actor.js';
import type { ActorContext } from '../../runtime/actor.js';
import { E } from '../../runtime/errors.js';
import { gossipProtocol } from '../../runtime/protocol/gossip.js';
import type { HeadsPage } from '../../runtime/protocol/journal.js';
import { Mesh } from './mesh.js';
import type { JournalPort, MeshOptions } from './mesh.js';
import { allViewRows } from '../../runtime/view-pages.js';

/** What `status` answers before the mesh listens. */
const STARTING = { starting: true } as const;
/** Ingesting a full frame verifies up to maxEntriesPerFrame signatures: give it time. */
const INGEST_TIMEOUT_MS = 30_000;
/** How often the peer gauges are refreshed. */
const GAUGE_INTERVAL_MS = 1000;

export default class GossipActor extends Actor {
  private mesh: Mesh | undefined;
  private gauges: NodeJS.Timeout | undefined;
  private readonly peersGauge = this.metrics.gauge('gossip_peers');
  private readonly bansGauge = this.metrics.gauge('gossip_bans');
  // Counters (Prometheus: `_total`, the unit before it), grown each tick by what happened since.
  private readonly bytesIn = this.metrics.counter('gossip_received_bytes_total');
  private readonly bytesOut = this.metrics.counter('gossip_sent_bytes_total');
  private readonly ingestedCount = this.metrics.counter('gossip_ingested_entries_total');
  private readonly invalidCount = this.metrics.counter('gossip_invalid_answers_total');
  private readonly lagGauge = this.metrics.gauge('gossip_lag_entries');
  private readonly feedsGauge = this.metrics.gauge('gossip_feeds');

  constructor(ctx: ActorContext) {
    super(ctx);
    this.serve(gossipProtocol, {
      status: () => this.mesh?.describe() ?? STARTING,
      peers: () => this.mesh?.describe() ?? STARTING,
      unban: (req) => ({ unbanned: this.mesh?.unban(req.did) ?? false }),
      undial: (req) => this.mesh?.undial(req.url) ?? { dropped: false, reason: 'starting' },
      appended: (req) => this.mesh?.journalOnAppended(req.entries),
      membership: (data) => this.mesh?.journalOnMembership(data),
      invite: (req) => this.started().invite(req),
      join: (req) => this.started().join(req.token, req.timeoutMs),
      // The consumer side of the grant flow: the authorizer asks, we carry it to the provider.
      grantNonce: (req) => this.started().grantNonce(req.provider, req.url),
      grantRequest: (req) => this.started().grantRequest(req.provider, req.rid, req.request),
    });
  }

  override async init(): Promise<void> {
    const { did } = await this.ask('journal', 'identity');
    this.mesh = new Mesh(did, this.journalPort(), this.options as unknown as MeshOptions, this.log);
    this.mesh.grants = {
      challenge: (peerDid) => this.ask('grants', 'challenge', { peer: peerDid }),
      authorize: (request, seen) => this.ask('grants', 'authorize', { request, ...seen }),
    };
    await this.mesh.start();
    await this.ask('journal', 'subscribe');
    // The totals grow by each link's traffic since the last tick; the links'
    // own counters are left alone (the console shows them since the link opened).
    const counted = new WeakMap<object, { in: number; out: number }>();
    const seen = { ingested: 0, invalid: 0 };
    this.gauges = setInterval(() => {
      const m = this.mesh!;
      const peers = m.openPeers();
      this.peersGauge.set(peers.length);
      this.bansGauge.set(m.bans.size);
      for (const p of peers) {
        const c = counted.get(p) ?? { in: 0, out: 0 };
        this.bytesIn.inc(p.bytesIn - c.in);
        this.bytesOut.inc(p.bytesOut - c.out);
        counted.set(p, { in: p.bytesIn, out: p.bytesOut });
      }
      this.ingestedCount.inc(m.counters.ingested - seen.ingested);
      this.invalidCount.inc(m.counters.invalid - seen.invalid);
      seen.ingested = m.counters.ingested;
      seen.invalid = m.counters.invalid;
      // Entries some peer has that we lack, summed over feeds (the largest over peers).
      let lag = 0;
      for (const p of peers) {
        let behind = 0;
        for (const [author, seq] of p.heads)
          behind += Math.max(0, seq - (m.local.get(author) ?? 0));
        lag = Math.max(lag, behind);
      }
      this.lagGauge.set(lag);
      this.feedsGauge.set(m.local.size);
    }, GAUGE_INTERVAL_MS);
    this.gauges.unref();
  }

  override async stop(): Promise<void> {
    clearInterval(this.gauges);
    await this.mesh?.stop();
  }

  override inspectState(): unknown {
    return this.mesh?.describe();
  }

  private started(): Mesh {
    if (!this.mesh) throw E.ERR_STOPPING('gossip is not started');
    return this.mesh;
  }

  private journalPort(): JournalPort {
    return {
      // Asked without a page, the journal answers the whole version vector.
      heads: async () => wholeVector(await this.ask('journal', 'heads')),
      range: (author, from, to, limit) => this.ask('journal', 'range', { author, from, to, limit }),
      ingest: (entries) =>
        this.ask('journal', 'ingest', { entries }, { timeoutMs: INGEST_TIMEOUT_MS }),
      signAuth: (t) => this.ask('journal', 'signAuth', t),
      proof: (p) => this.ask('journal', 'proof', p),
      proofs: () => this.ask('journal', 'proofs'),
      nodes: async () => {
        const rows = await allViewRows((data) => this.ask('journal', 'view', data), 'nodes');
        return rows.map(([did, r]) => ({ did, gossip: r.gossip }));
      },
      selfSynced: async () => void (await this.ask('journal', 'selfSynced')),
      membership: () => this.ask('journal', 'membership'),
      signInvite: (req) => this.ask('journal', 'signInvite', req),
      redeemInvite: (token, did) => this.ask('journal', 'redeemInvite', { token, did }),
      setMesh: async (mesh) => void (await this.ask('journal', 'setMesh', { mesh })),
      announce: (record) => this.ask('journal', 'announce', record),
    };
  }
}

/** A whole version vector (author DIDs → seq), not a page of one. */
function wholeVector(h: Record<string, number> | HeadsPage): Record<string, number> {
  if (typeof h.next === 'string' || h.next === null) throw E.ERR_PROTOCOL('heads answered a page');
  return h as Record<string, number>;
}
