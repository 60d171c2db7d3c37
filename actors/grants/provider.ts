/**
 * The provider side of the grant flow (docs/design.md, the grant flow):
 * decide a consumer's request (checks.ts, in their fixed order), have the
 * nft executor put its IP in the service's set for the lease, record the
 * `grant`; remove it (`ungrant`) on revocation, withdrawal or expiry; hand
 * the executor the whole desired state periodically.
 *
 * Order of effects for an allowed request, and why:
 *   audit line (fsynced) → nft element (the kernel enforces the lease) →
 *   `grant` entry → answer. A crash between the steps leaves at worst an
 *   element the journal does not know of, which the next reconcile removes;
 *   never a grant on record that the firewall does not honour.
 */
import type { AuditLog } from '../../runtime/audit-log.js';
import type { Logger } from '../../runtime/log.js';
import type { MetricsRegistry } from '../../runtime/metrics.js';
import type { AppendResult, EntrySummary } from '../../runtime/protocol/journal.js';
import type { GrantResult, LiveGrant } from '../../runtime/protocol/grants.js';
import type { authorizeRequest } from '../../runtime/protocol/grants.js';
import type { ApplyRequest, ReconcileRequest } from '../../runtime/protocol/nft.js';
import { take } from '../../runtime/token-bucket.js';
import type { Bucket } from '../../runtime/token-bucket.js';
import type { EntryKind } from '../../runtime/domain/entries.js';
import type { PolicyGate } from '../../sandbox/policy.js';
import { decide } from './checks.js';
import type { Decision, PolicyInput } from './checks.js';
import type { ViewLookup, JournalViews } from './lookup.js';
import type { NonceBook } from './nonces.js';
import type { z } from 'zod';

/** Grant latencies kept for `status` (a ring: recent behaviour, bounded memory). */
const MAX_LATENCY_SAMPLES = 1000;
/** Per-subscriber buckets kept at most (oldest dropped): bounded memory under a DID flood. */
const MAX_BUCKETS = 100_000;

export interface RateOptions {
  subscriberPerMinute: number;
  subscriberBurst: number;
  globalPerSecond: number;
  globalBurst: number;
}

/** What the provider needs from the other actors (typed asks, made by the actor shell). */
export interface ProviderPorts {
  applyNft(req: ApplyRequest): Promise<unknown>;
  reconcileNft(req: ReconcileRequest): Promise<unknown>;
  append(kind: EntryKind, body: Record<string, unknown>, requestId: string): Promise<AppendResult>;
}

export interface ProviderDeps {
  me: string;
  views: JournalViews;
  lookup: ViewLookup;
  ports: ProviderPorts;
  audit: AuditLog;
  policy: PolicyGate;
  nonces: NonceBook;
  mesh: Parameters<typeof decide>[4];
  rates: RateOptions;
  log: Logger;
  metrics: MetricsRegistry;
}

export class Provider {
  readonly live = new Map<string, LiveGrant>();
  /** Elements being applied, not live yet: every reconcile keeps them (see authorize). */
  private readonly applying = new Map<
    string,
    { proto: 'tcp' | 'udp'; port: number; ip: string; expiresAt: number }
  >();
  readonly grantLatency: number[] = [];
  private readonly buckets = new Map<string, Bucket>();
  private global: Bucket;
  private readonly decisions;
  private readonly denied;
  private readonly liveGauge;
  private readonly byOutcome = new Map<string, { inc(by?: number): void }>();

  constructor(private readonly d: ProviderDeps) {
    this.global = { tokens: d.rates.globalBurst, at: Date.now() };
    this.decisions = d.metrics.counter('grants_decisions_total');
    this.denied = d.metrics.counter('grants_denied_total');
    this.liveGauge = d.metrics.gauge('grants_live');
  }

  /** Live grants and our revocations of them, from the journal (they hold across restarts). */
  load(): void {
    for (const [key, row] of this.d.views.rows('revocations')) {
      if (key.endsWith(` ${this.d.me}`)) this.d.lookup.noteRevocation(row.id);
    }
    const now = Date.now();
    for (const [id, g] of this.d.views.rows('grants')) {
      if (g.provider !== this.d.me || g.expires <= now) continue;
      if (this.d.views.view('ungrants', `${id} ${this.d.me}`)) continue;
      const current = this.live.get(g.subscription);
      if (current && current.expires >= g.expires) continue;
      const offer = this.d.lookup.offer(g.service);
      if (!offer) continue;
      this.live.set(g.subscription, {
        grant: id,
        subscription: g.subscription,
        subscriber: g.subscriber,
        service: g.service,
        ip: g.ip,
        port: offer.port,
        proto: offer.proto,
        expires: g.expires,
      });
    }
    this.liveGauge.set(this.live.size);
  }

  async authorize(req: z.output<typeof authorizeRequest>): Promise<GrantResult> {
    const { request, peerDid, sourceIp, localIp, receivedAt } = req;
    let decision: Decision;
    try {
      decision = await decide(
        request,
        { peerDid, sourceIp },
        this.d.lookup,
        this.gates(),
        this.d.mesh,
      );
    } catch (err) {
      // A lookup failed (the journal's file unreadable): deny, and say so in the audit log.
      const code = (err as { code?: string }).code ?? 'ERR_HANDLER';
      this.d.audit.append({
        kind: 'decision',
        allow: false,
        code,
        reason: `lookup failed: ${(err as Error).message}`.slice(0, 256),
        subscriber: request.did.slice(0, 64),
        ip: sourceIp,
      });
      this.countDecision(code);
      return { ok: false, code, reason: 'the authorizer could not decide; retry' };
    }
    this.decisions.inc();
    if (!decision.allow) return this.refuse(request, sourceIp, decision);
    const { offer } = decision;
    const expires = Date.now() + offer.leaseSeconds * 1000;
    const previous = this.live.get(request.subscription);
    const base = {
      subscriber: request.did,
      service: request.service,
      subscription: request.subscription,
      ip: sourceIp,
    };
    this.d.audit.append({
      kind: 'decision',
      allow: true,
      ...base,
      port: offer.port,
      proto: offer.proto,
      expires,
    });
    this.d.log.debug(
      { subscription: request.subscription, subscriber: request.did, ip: sourceIp, expires },
      'grant allowed',
    );
    // From the apply until the grant is live, a reconcile must keep the element:
    // the `grant` entry is appended in between, and a reconcile's desired state
    // taken in that window removed the element just put in (seen under load).
    const applyingKey = `${request.subscription} ${expires}`;
    this.applying.set(applyingKey, {
      proto: offer.proto,
      port: offer.port,
      ip: sourceIp,
      expiresAt: expires,
    });
    try {
      await this.d.ports.applyNft({
        add: [
          { proto: offer.proto, port: offer.port, ip: sourceIp, leaseSeconds: offer.leaseSeconds },
        ],
        // A renewal from a new address moves the grant: the old address goes in the same transaction.
        remove:
          previous && previous.ip !== sourceIp
            ? [{ proto: previous.proto, port: previous.port, ip: previous.ip }]
            : [],
      });
    } catch (err) {
      this.applying.delete(applyingKey);
      const code = (err as { code?: string }).code ?? 'ERR_HANDLER';
      this.d.audit.append({ kind: 'applyFailed', ...base, code, reason: (err as Error).message });
      this.countDecision('ERR_GRANT_APPLY');
      return { ok: false, code: 'ERR_GRANT_APPLY', reason: 'the firewall change failed' };
    }
    if (receivedAt !== undefined) {
      this.recordGrantLatency(performance.timeOrigin + performance.now() - receivedAt);
    }
    let id: string;
    try {
      ({ id } = await this.d.ports.append(
        'grant',
        { ...base, expires },
        `grant-${request.subscription.slice(0, 32)}-${expires}`,
      ));
    } finally {
      this.applying.delete(applyingKey);
    }
    this.live.set(request.subscription, {
      grant: id,
      ...base,
      port: offer.port,
      proto: offer.proto,
      expires,
    });
    this.liveGauge.set(this.live.size);
    this.countDecision('allowed');
    // Our address as the consumer should use it: our node record's mesh IP, else the link's.
    const ip = this.d.lookup.node(this.d.me)?.meshIp ?? localIp ?? '';
    return { ok: true, endpoint: { ip, port: offer.port, proto: offer.proto }, expires, grant: id };
  }

  /** Hand the executor the whole desired state; it adds what is missing and removes the rest. */
  async reconcile(): Promise<void> {
    try {
      await this.d.ports.reconcileNft({
        grants: [
          ...[...this.live.values()].map((g) => ({
            proto: g.proto,
            port: g.port,
            ip: g.ip,
            expiresAt: g.expires,
          })),
          ...this.applying.values(),
        ],
        // The complete list: a withdrawn offer's port stops being guarded (its sets and rules go).
        services: this.d.lookup.offeredServices(),
      });
    } catch (err) {
      this.d.log.warn({ err }, 'reconcile with the executor failed; next period retries');
    }
  }

  /** Expired leases: the kernel already dropped the element; record it and make sure. */
  async sweep(): Promise<void> {
    const now = Date.now();
    for (const g of [...this.live.values()]) if (g.expires <= now) await this.ungrant(g, 'expired');
  }

  /**
   * A revoke or a new offer may end live grants: re-check each against the
   * views. Returns whether the executor should reconcile soon.
   */
  async journalOnAppended(entries: readonly EntrySummary[]): Promise<boolean> {
    if (!entries.some((e) => e.kind === 'revoke' || e.kind === 'offer')) return false;
    for (const e of entries) {
      if (e.kind === 'revoke' && e.author === this.d.me) this.d.lookup.noteRevocation(e.id);
    }
    const lookup = this.d.lookup;
    for (const g of [...this.live.values()]) {
      const offer = lookup.offer(g.service);
      if (!offer || lookup.revoked(offer.id, this.d.me)) {
        await this.ungrant(g, 'withdrawn');
      } else if (
        lookup.revoked(g.subscription, g.subscriber) ||
        lookup.revoked(g.grant, this.d.me) ||
        (offer.mode === 'manual' && !lookup.approvedStill(g.subscription))
      ) {
        await this.ungrant(g, 'revoked');
      }
    }
    return true;
  }

  /** The membership changed: grants to subscribers who no longer count (expelled) end now. */
  async membershipOnChange(): Promise<boolean> {
    let ended = false;
    for (const g of [...this.live.values()]) {
      if (!this.d.lookup.counts(g.subscriber)) {
        await this.ungrant(g, 'revoked');
        ended = true;
      }
    }
    return ended;
  }

  private async ungrant(g: LiveGrant, reason: 'revoked' | 'expired' | 'withdrawn'): Promise<void> {
    if (this.live.get(g.subscription) !== g) return;
    this.live.delete(g.subscription);
    this.liveGauge.set(this.live.size);
    this.d.audit.append({
      kind: 'ungrant',
      reason,
      grant: g.grant,
      subscriber: g.subscriber,
      service: g.service,
      ip: g.ip,
    });
    try {
      await this.d.ports.applyNft({
        add: [],
        remove: [{ proto: g.proto, port: g.port, ip: g.ip }],
      });
    } catch (err) {
      this.d.log.warn({ err, grant: g.grant }, 'element removal failed; reconcile retries');
    }
    try {
      await this.d.ports.append(
        'ungrant',
        { grant: g.grant, subscriber: g.subscriber, service: g.service, ip: g.ip, reason },
        `ungrant-${g.grant.slice(0, 40)}`,
      );
    } catch (err) {
      this.d.log.warn({ err, grant: g.grant }, 'ungrant entry not written');
    }
  }

  /** "Request received → IP in the kernel set", the last MAX_LATENCY_SAMPLES grants (ms). */
  private recordGrantLatency(ms: number): void {
    this.grantLatency.push(ms);
    if (this.grantLatency.length > MAX_LATENCY_SAMPLES) this.grantLatency.shift();
  }

  /** Decisions by outcome, for the metrics: grants_decision_allowed_total, grants_decision_err_grant_rate_total, … */
  private countDecision(outcome: string): void {
    if (outcome !== 'allowed') this.denied.inc();
    const name = `grants_decision_${outcome.toLowerCase().replace(/[^a-z0-9_]/g, '_')}_total`;
    let c = this.byOutcome.get(name);
    if (!c) this.byOutcome.set(name, (c = this.d.metrics.counter(name)));
    c.inc();
  }

  private refuse(
    request: { did: string; service: string; subscription: string },
    sourceIp: string,
    d: Exclude<Decision, { allow: true }>,
  ): GrantResult {
    this.countDecision(d.code);
    // Bounded like the audit line: the request's strings are the peer's.
    this.d.log.debug(
      {
        subscription: request.subscription.slice(0, 64),
        subscriber: request.did.slice(0, 64),
        ip: sourceIp,
        code: d.code,
        reason: d.reason,
      },
      'grant refused',
    );
    this.d.audit.append({
      kind: 'decision',
      allow: false,
      code: d.code,
      reason: d.reason,
      // Strings from the peer are logged bounded: the audit log is not theirs to fill.
      subscriber: request.did.slice(0, 64),
      service: request.service.slice(0, 64),
      subscription: request.subscription.slice(0, 64),
      ip: sourceIp,
    });
    return { ok: false, code: d.code, reason: d.reason };
  }

  private gates() {
    return {
      nonce: (nonce: string, peer: string) => this.d.nonces.consume(nonce, peer),
      rate: (subscriber: string) => this.rateOk(subscriber),
      policy: (input: PolicyInput) => this.d.policy.authorize(input),
    };
  }

  private rateOk(subscriber: string): boolean {
    const now = Date.now();
    const r = this.d.rates;
    const b = this.buckets.get(subscriber) ?? { tokens: r.subscriberBurst, at: now };
    const mine = take(b, 1, r.subscriberPerMinute / 60, r.subscriberBurst, now);
    if (this.buckets.size >= MAX_BUCKETS && !this.buckets.has(subscriber)) {
      this.buckets.delete(this.buckets.keys().next().value!);
    }
    this.buckets.set(subscriber, mine.bucket);
    if (!mine.ok) return false;
    const all = take(this.global, 1, r.globalPerSecond, r.globalBurst, now);
    this.global = all.bucket;
    return all.ok;
  }
}
