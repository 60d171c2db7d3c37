/**
 * The sync gossiper actor (DESIGN §5): the node's WebSocket face to the
 * mesh. The protocol lives in mesh.ts (sync) and peer.ts (one connection);
 * this shell wires it to the journal — every entry a peer hands over goes
 * to the journal's `ingest`, which verifies it; gossip never appends — and
 * answers the operator.
 */
import { z } from 'zod';
import { Actor } from '../../runtime/actor.js';
import type { ActorContext } from '../../runtime/actor.js';
import type { AuthTranscript } from '../../runtime/crypto/index.js';
import { E } from '../../runtime/errors.js';
import { ADMIN } from '../../runtime/types.js';
import { Mesh } from './mesh.js';
import type { GrantRequest, GrantResult } from '../../runtime/types.js';
import type { JournalPort, MeshOptions, Proof } from './mesh.js';
import { allViewRows } from '../../runtime/view-pages.js';

const unbanRequest = z.strictObject({
  did: z.string().regex(/^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$/, { error: 'must be a did:key' }),
});
const undialRequest = z.strictObject({ url: z.string().min(1).max(512) });

/** Parse an operator's request, or ERR_BAD_REQUEST naming the field. */
function parseRequest<S extends z.ZodType>(schema: S, data: unknown, action: string): z.output<S> {
  const r = schema.safeParse(data ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = issue.path.join('.') || (issue.code === 'unrecognized_keys' ? issue.keys[0] : '');
  throw E.ERR_BAD_REQUEST(`${action}.${field ?? ''}: ${issue.message}`);
}

/** Ingesting a full frame verifies up to maxEntriesPerFrame signatures: give it time. */
const INGEST_TIMEOUT_MS = 30_000;
/** How often the peer gauges are refreshed. */
const GAUGE_INTERVAL_MS = 1000;

export default class GossipActor extends Actor {
  private mesh: Mesh | undefined;
  private gauges: NodeJS.Timeout | undefined;
  private readonly peersGauge = this.metrics.gauge('gossip_peers');
  private readonly bansGauge = this.metrics.gauge('gossip_bans');
  private readonly bytesIn = this.metrics.gauge('gossip_bytes_in');
  private readonly bytesOut = this.metrics.gauge('gossip_bytes_out');
  private readonly ingestedGauge = this.metrics.gauge('gossip_entries_ingested');
  private readonly invalidGauge = this.metrics.gauge('gossip_invalid_answers');
  private readonly lagGauge = this.metrics.gauge('gossip_lag_entries');
  private readonly feedsGauge = this.metrics.gauge('gossip_feeds');

  constructor(ctx: ActorContext) {
    super(ctx);
    this.on('status', [ADMIN], () => this.mesh?.describe() ?? { starting: true });
    this.on('peers', [ADMIN], () => this.mesh?.describe() ?? { starting: true });
    this.on('unban', [ADMIN], (data) => ({
      unbanned: this.mesh?.unban(parseRequest(unbanRequest, data, 'unban').did) ?? false,
    }));
    this.on('undial', [ADMIN], (data) => {
      const { url } = parseRequest(undialRequest, data, 'undial');
      return this.mesh?.undial(url) ?? { dropped: false, reason: 'starting' };
    });
    this.on('appended', ['journal'], (data) => this.journalOnAppended(data));
    // The consumer side of the grant flow: the authorizer asks, we carry it to the provider.
    this.on('grantNonce', ['grants'], (data) => {
      const { provider, url } = (data ?? {}) as { provider?: unknown; url?: unknown };
      if (typeof provider !== 'string')
        throw E.ERR_BAD_REQUEST('grantNonce.provider');
      return this.mesh!.grantNonce(provider, typeof url === 'string' ? url : undefined);
    });
    this.on('grantRequest', ['grants'], (data) => {
      const { provider, rid, request } = (data ?? {}) as Record<string, unknown>;
      if (typeof provider !== 'string' || typeof rid !== 'string' || typeof request !== 'object') {
        throw E.ERR_BAD_REQUEST('grantRequest needs provider, rid, request');
      }
      return this.mesh!.grantRequest(provider, rid, request as GrantRequest);
    });
  }

  override async init(): Promise<void> {
    const { did } = (await this.ask('journal', 'identity')) as { did: string };
    this.mesh = new Mesh(did, this.journalPort(), this.options as unknown as MeshOptions, this.log);
    this.mesh.grants = {
      challenge: (peerDid) =>
        this.ask('grants', 'challenge', { peer: peerDid }) as Promise<{
          nonce: string;
          expiresAt: number;
        }>,
      authorize: (request, seen) =>
        this.ask('grants', 'authorize', { request, ...seen }) as Promise<GrantResult>,
    };
    await this.mesh.start();
    await this.ask('journal', 'subscribe');
    let bytesIn = 0;
    let bytesOut = 0;
    // The totals grow by each link's traffic since the last tick; the links'
    // own counters are left alone (the console shows them since the link opened).
    const counted = new WeakMap<object, { in: number; out: number }>();
    this.gauges = setInterval(() => {
      const m = this.mesh!;
      const peers = m.openPeers();
      this.peersGauge.set(peers.length);
      this.bansGauge.set(m.bans.size);
      for (const p of peers) {
        const c = counted.get(p) ?? { in: 0, out: 0 };
        bytesIn += p.bytesIn - c.in;
        bytesOut += p.bytesOut - c.out;
        counted.set(p, { in: p.bytesIn, out: p.bytesOut });
      }
      this.bytesIn.set(bytesIn);
      this.bytesOut.set(bytesOut);
      this.ingestedGauge.set(m.counters.ingested);
      this.invalidGauge.set(m.counters.invalid);
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

  private journalOnAppended(data: unknown): void {
    const entries = (data as { entries?: unknown })?.entries;
    if (!Array.isArray(entries)) throw E.ERR_BAD_REQUEST('appended.entries');
    this.mesh?.journalOnAppended(entries as Array<{ author: string; seq: number }>);
  }

  private journalPort(): JournalPort {
    return {
      heads: () => this.ask('journal', 'heads') as Promise<Record<string, number>>,
      range: (author, from, to, limit) =>
        this.ask('journal', 'range', { author, from, to, limit }) as Promise<unknown[]>,
      ingest: (entries) =>
        this.ask('journal', 'ingest', { entries }, { timeoutMs: INGEST_TIMEOUT_MS }) as Promise<{
          appended: number;
          duplicates: number;
        }>,
      signAuth: (t: AuthTranscript) => this.ask('journal', 'signAuth', t) as Promise<string>,
      proof: (p: Proof) => this.ask('journal', 'proof', p) as Promise<{ recorded: boolean }>,
      proofs: () => this.ask('journal', 'proofs') as Promise<Proof[]>,
      nodes: async () => {
        const rows = await allViewRows<{ gossip?: string }>(
          (data) => this.ask('journal', 'view', data),
          'nodes',
        );
        return rows
          .filter(([, r]) => typeof r.gossip === 'string')
          .map(([did, r]) => ({ did, gossip: r.gossip! }));
      },
      selfSynced: async () => void (await this.ask('journal', 'selfSynced')),
    };
  }
}
