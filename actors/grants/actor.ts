/**
 * The grant authorizer (DESIGN §6). Provider side: issues nonces, decides
 * grant requests (checks.ts, in their fixed order), has the nft executor put
 * the consumer's IP in the service's set for the lease, records `grant`, and
 * removes it (`ungrant`) on revocation, withdrawal or expiry. Consumer side:
 * `activate` runs the request flow against a provider over the gossip link
 * and keeps the endpoint it returns, renewing it before the lease ends.
 * Operator verbs (offer, subscribe, approve, revoke) append the entries.
 *
 * Order of effects for an allowed request, and why:
 *   audit line (fsynced) → nft element (the kernel enforces the lease) →
 *   `grant` entry → answer. A crash between the steps leaves at worst an
 *   element the journal does not know of, which the next reconcile removes;
 *   never a grant on record that the firewall does not honour.
 */
import { randomUUID } from 'node:crypto';
import { Actor } from '../../runtime/actor.js';
import type { ActorContext } from '../../runtime/actor.js';
import { AuditLog } from '../../runtime/audit-log.js';
import { E, errorFromPayload, MeshError } from '../../runtime/errors.js';
import { take } from '../../runtime/token-bucket.js';
import type { Bucket } from '../../runtime/token-bucket.js';
import { ADMIN } from '../../runtime/types.js';
import { Activations } from './activations.js';
import { decide, meshBlocks } from './checks.js';
import type { Activation, GrantRequest, LiveGrant } from '../../runtime/types.js';
import type { Decision, GrantLookup, Offer, PolicyInput } from './checks.js';
import { NonceBook } from './nonces.js';
import { PolicyGate } from '../../sandbox/policy.js';
import type { PolicyOptions } from '../../sandbox/policy.js';
import { allViewRows } from '../../runtime/view-pages.js';

/** Offers and revokes within this window share one reconcile with the executor. */
const RECONCILE_DEBOUNCE_MS = 500;
/** Grant latencies kept for `status` (a ring: recent behaviour, bounded memory). */
const MAX_LATENCY_SAMPLES = 1000;
/** Per-subscriber buckets kept at most (oldest dropped): bounded memory under a DID flood. */
const MAX_BUCKETS = 100_000;

interface Options {
  stateDir: string;
  meshCidrs: string[];
  nonceTtlMs: number;
  subscriberPerMinute: number;
  subscriberBurst: number;
  globalPerSecond: number;
  globalBurst: number;
  auditLog: string;
  renewAt: number;
  sweepMs: number;
  reconcileMs: number;
  /** The operator's policy processes (check 9) and the sandbox they run in. */
  sandbox?: PolicyOptions;
}

export default class GrantsActor extends Actor {
  /** Filled and validated once by supervisor/config.ts ([grants], [mesh], [sandbox]): no second set of defaults here. */
  private readonly opts = this.options as unknown as Options;
  private readonly mesh = meshBlocks(this.opts.meshCidrs);
  private readonly nonces = new NonceBook(this.opts.nonceTtlMs);
  private readonly live = new Map<string, LiveGrant>();
  /** Subscriptions whose grant we revoked: their access is over (check 7), renewals included. */
  private readonly revokedGrantSubs = new Set<string>();
  private readonly buckets = new Map<string, Bucket>();
  private global: Bucket = { tokens: 0, at: 0 };
  private audit!: AuditLog;
  private policy!: PolicyGate;
  private activations!: Activations;
  private me = '';
  private timers: NodeJS.Timeout[] = [];
  private renewals = new Map<string, NodeJS.Timeout>();
  private readonly decisions = this.metrics.counter('grants_decisions_total');
  private readonly denied = this.metrics.counter('grants_denied_total');
  private readonly liveGauge = this.metrics.gauge('grants_live');
  private readonly byOutcome = new Map<string, { inc(by?: number): void }>();
  private readonly grantLatency: number[] = [];
  private reconcileTimer: NodeJS.Timeout | undefined;

  constructor(ctx: ActorContext) {
    super(ctx);
    this.on('status', [ADMIN], () => this.adminOnStatus());
    this.on('grants', [ADMIN], () => ({
      live: [...this.live.values()],
      activations: this.activations.all(),
    }));
    this.on('offer', [ADMIN], (d) => this.adminOnOffer(d));
    this.on('subscribe', [ADMIN], (d) => this.adminOnSubscribe(d));
    this.on('approve', [ADMIN], (d) => this.adminOnApprove(d));
    this.on('revoke', [ADMIN], (d) => this.adminOnRevoke(d));
    this.on('activate', [ADMIN], (d) => this.adminOnActivate(d));
    this.on('challenge', ['gossip'], (d) =>
      this.nonces.issue(String((d as { peer?: unknown })?.peer)),
    );
    this.on('authorize', ['gossip'], (d) => this.gossipOnAuthorize(d));
    this.on('appended', ['journal'], (d) => this.journalOnAppended(d));
  }

  override async init(): Promise<void> {
    this.global = { tokens: this.opts.globalBurst, at: Date.now() };
    this.audit = new AuditLog(this.opts.auditLog);
    this.activations = new Activations(`${this.opts.stateDir}/activations.json`);
    this.me = ((await this.ask('journal', 'identity')) as { did: string }).did;
    // Policies are the node's own processes: the node's DID owns them.
    this.policy = await PolicyGate.start(this.me, this.opts.sandbox ?? { policies: [] });
    await this.loadLive();
    await this.loadRevokedGrants();
    await this.ask('journal', 'subscribe');
    await this.reconcile();
    this.timers.push(setInterval(() => void this.sweep(), this.opts.sweepMs));
    this.timers.push(setInterval(() => void this.reconcile(), this.opts.reconcileMs));
    for (const t of this.timers) t.unref();
    for (const a of this.activations.all()) this.scheduleRenewal(a);
  }

  override async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.reconcileTimer);
    for (const t of this.renewals.values()) clearTimeout(t);
    this.audit?.close();
    await this.policy?.close();
  }

  override inspectState(): unknown {
    return {
      live: this.live.size,
      nonces: this.nonces.size,
      activations: this.activations?.all().length,
    };
  }

  // --- provider side ----------------------------------------------------------

  private async gossipOnAuthorize(data: unknown): Promise<Record<string, unknown>> {
    const { request, peerDid, sourceIp, localIp, receivedAt } = (data ?? {}) as {
      request?: GrantRequest;
      peerDid?: string;
      sourceIp?: string;
      localIp?: string;
      receivedAt?: number;
    };
    if (!request || typeof peerDid !== 'string' || typeof sourceIp !== 'string') {
      throw E.ERR_BAD_REQUEST('authorize needs request, peerDid, sourceIp');
    }
    let decision: Decision;
    try {
      decision = await decide(
        request,
        { peerDid, sourceIp },
        this.lookup(),
        this.gates(),
        this.mesh,
      );
    } catch (err) {
      // A lookup failed (the journal restarting): deny, and say so in the audit log.
      const code = (err as MeshError).code ?? 'ERR_HANDLER';
      this.audit.append({
        kind: 'decision',
        allow: false,
        code,
        reason: `lookup failed: ${(err as Error).message}`.slice(0, 256),
        subscriber: String(request.did).slice(0, 64),
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
    this.audit.append({
      kind: 'decision',
      allow: true,
      ...base,
      port: offer.port,
      proto: offer.proto,
      expires,
    });
    try {
      await this.ask('nft', 'apply', {
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
      const code = (err as MeshError).code ?? 'ERR_HANDLER';
      this.audit.append({ kind: 'applyFailed', ...base, code, reason: (err as Error).message });
      this.countDecision('ERR_GRANT_APPLY');
      return { ok: false, code: 'ERR_GRANT_APPLY', reason: 'the firewall change failed' };
    }
    if (typeof receivedAt === 'number') {
      this.recordGrantLatency(performance.timeOrigin + performance.now() - receivedAt);
    }
    const { id } = (await this.ask('journal', 'append', {
      kind: 'grant',
      body: { ...base, expires },
      requestId: `grant-${request.subscription.slice(0, 32)}-${expires}`,
    })) as { id: string };
    this.live.set(request.subscription, {
      grant: id,
      ...base,
      port: offer.port,
      proto: offer.proto,
      expires,
    });
    this.liveGauge.set(this.live.size);
    this.countDecision('allowed');
    return {
      ok: true,
      endpoint: { ip: await this.endpointIp(localIp), port: offer.port, proto: offer.proto },
      expires,
      grant: id,
    };
  }

  /** "Request received → IP in the kernel set", the last MAX_LATENCY_SAMPLES grants (ms). */
  private recordGrantLatency(ms: number): void {
    this.grantLatency.push(ms);
    if (this.grantLatency.length > MAX_LATENCY_SAMPLES) this.grantLatency.shift();
  }

  /** Decisions by outcome, for the metrics: grants_decision_allowed, grants_decision_err_grant_rate, … */
  private countDecision(outcome: string): void {
    if (outcome !== 'allowed') this.denied.inc();
    const name = `grants_decision_${outcome.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`;
    let c = this.byOutcome.get(name);
    if (!c) this.byOutcome.set(name, (c = this.metrics.counter(name)));
    c.inc();
  }

  private refuse(
    request: GrantRequest,
    sourceIp: string,
    d: Exclude<Decision, { allow: true }>,
  ): Record<string, unknown> {
    this.countDecision(d.code);
    this.audit.append({
      kind: 'decision',
      allow: false,
      code: d.code,
      reason: d.reason,
      // Strings from the peer are logged bounded: the audit log is not theirs to fill.
      subscriber: String(request.did).slice(0, 64),
      service: String(request.service).slice(0, 64),
      subscription: String(request.subscription).slice(0, 64),
      ip: sourceIp,
    });
    return { ok: false, code: d.code, reason: d.reason };
  }

  /** Our address as the consumer should use it: our node record's mesh IP, else the link's. */
  private async endpointIp(localIp: string | undefined): Promise<string> {
    const node = (await this.ask('journal', 'view', { view: 'nodes', key: this.me })) as {
      meshIp?: string;
    } | null;
    return node?.meshIp ?? localIp ?? '';
  }

  private gates() {
    return {
      nonce: (nonce: string, peer: string) => this.nonces.consume(nonce, peer),
      rate: (subscriber: string) => this.rateOk(subscriber),
      policy: (input: PolicyInput) => this.policy.authorize(input),
    };
  }

  private rateOk(subscriber: string): boolean {
    const now = Date.now();
    const burst = this.opts.subscriberBurst;
    const b = this.buckets.get(subscriber) ?? { tokens: burst, at: now };
    const mine = take(b, 1, this.opts.subscriberPerMinute / 60, burst, now);
    if (this.buckets.size >= MAX_BUCKETS && !this.buckets.has(subscriber)) {
      this.buckets.delete(this.buckets.keys().next().value!);
    }
    this.buckets.set(subscriber, mine.bucket);
    if (!mine.ok) return false;
    const all = take(this.global, 1, this.opts.globalPerSecond, this.opts.globalBurst, now);
    this.global = all.bucket;
    return all.ok;
  }

  private lookup(): GrantLookup {
    const view = (v: string, key: string) =>
      this.ask('journal', 'view', { view: v, key }) as Promise<Record<string, unknown> | null>;
    return {
      me: this.me,
      subscription: async (id) =>
        ((await view('subscriptions', id)) as {
          subscriber: string;
          provider: string;
          service: string;
        } | null) ?? undefined,
      offer: async (service) => {
        const ref = (await view('offersByService', `${this.me} ${service}`)) as {
          offer?: string;
        } | null;
        if (!ref?.offer) return undefined;
        const o = (await view('offers', ref.offer)) as Omit<Offer, 'id'> | null;
        return o ? { ...o, id: ref.offer } : undefined;
      },
      revoked: async (target, by) => (await view('revocations', `${target} ${by}`)) !== null,
      grantRevoked: async (subscription) => this.revokedGrantSubs.has(subscription),
      approval: async (subscription) =>
        ((await view('approvals', `${subscription} ${this.me}`)) as { id?: string } | null)?.id,
    };
  }

  /** Live grants from the journal: our latest grant per subscription, not ungranted, not expired. */
  private async loadLive(): Promise<void> {
    const rows = await this.viewRows<Record<string, unknown>>('grants');
    const now = Date.now();
    for (const [id, g] of rows) {
      if (g.provider !== this.me || (g.expires as number) <= now) continue;
      const ungranted = await this.ask('journal', 'view', {
        view: 'ungrants',
        key: `${id} ${this.me}`,
      });
      if (ungranted) continue;
      const current = this.live.get(g.subscription as string);
      if (current && current.expires >= (g.expires as number)) continue;
      const offer = await this.lookup().offer(g.service as string);
      if (!offer) continue;
      this.live.set(g.subscription as string, {
        grant: id,
        subscription: g.subscription as string,
        subscriber: g.subscriber as string,
        service: g.service as string,
        ip: g.ip as string,
        port: offer.port,
        proto: offer.proto,
        expires: g.expires as number,
      });
    }
    this.liveGauge.set(this.live.size);
  }

  /** Hand the executor the whole desired state; it adds what is missing and removes the rest. */
  private async reconcile(): Promise<void> {
    try {
      await this.ask('nft', 'reconcile', {
        grants: [...this.live.values()].map((g) => ({
          proto: g.proto,
          port: g.port,
          ip: g.ip,
          expiresAt: g.expires,
        })),
        // The complete list: a withdrawn offer's port stops being guarded (its sets and rules go).
        services: await this.offeredServices(),
      });
    } catch (err) {
      this.log.warn({ err }, 'reconcile with the executor failed; next period retries');
    }
  }

  /** (proto, port) of every offer of ours that stands (the latest per service, not revoked). */
  private async offeredServices(): Promise<Array<{ proto: 'tcp' | 'udp'; port: number }>> {
    const rows = await this.viewRows<{
      provider?: string;
      service?: string;
      port?: number;
      proto?: 'tcp' | 'udp';
    }>('offers');
    const lookup = this.lookup();
    const out = new Map<string, { proto: 'tcp' | 'udp'; port: number }>();
    for (const [id, o] of rows) {
      if (o.provider !== this.me || !o.service || !o.port || !o.proto) continue;
      const current = await lookup.offer(o.service);
      if (current?.id !== id || (await lookup.revoked(id, this.me))) continue;
      out.set(`${o.proto}/${o.port}`, { proto: o.proto, port: o.port });
    }
    return [...out.values()];
  }

  /** Expired leases: the kernel already dropped the element; record it and make sure. */
  private async sweep(): Promise<void> {
    const now = Date.now();
    for (const g of [...this.live.values()]) if (g.expires <= now) await this.ungrant(g, 'expired');
  }

  /** A revoke or a new offer may end live grants: re-check each against the views. */
  private async journalOnAppended(data: unknown): Promise<void> {
    const entries = ((data as { entries?: unknown })?.entries ?? []) as Array<{
      id: string;
      author: string;
      kind: string;
    }>;
    if (!entries.some((e) => e.kind === 'revoke' || e.kind === 'offer')) return;
    for (const e of entries) {
      if (e.kind === 'revoke' && e.author === this.me) await this.noteRevocation(e.id);
    }
    const lookup = this.lookup();
    for (const g of [...this.live.values()]) {
      const offer = await lookup.offer(g.service);
      if (!offer || (await lookup.revoked(offer.id, this.me))) {
        await this.ungrant(g, 'withdrawn');
      } else if (
        (await lookup.revoked(g.subscription, g.subscriber)) ||
        (await lookup.revoked(g.grant, this.me)) ||
        (offer.mode === 'manual' && !(await this.approvedStill(g.subscription)))
      ) {
        await this.ungrant(g, 'revoked');
      }
    }
    // A new offer guards its port soon; a withdrawn one stops being guarded.
    this.reconcileSoon();
  }

  /**
   * One reconcile for a burst of offers and revokes: each reconcile reads
   * every offer of ours from the journal, so one per entry would make a
   * burst of N offers cost N² reads (and slow the journal for everyone).
   */
  private reconcileSoon(): void {
    if (this.reconcileTimer) return;
    this.reconcileTimer = setTimeout(() => {
      this.reconcileTimer = undefined;
      void this.reconcile();
    }, RECONCILE_DEBOUNCE_MS);
    this.reconcileTimer.unref();
  }

  /** Every row of a journal view (page by page). */
  private viewRows<T>(view: string): Promise<Array<[string, T]>> {
    return allViewRows<T>((data) => this.ask('journal', 'view', data), view);
  }

  /** Our revocations of our own grants, from the journal (check 7 holds across restarts). */
  private async loadRevokedGrants(): Promise<void> {
    const rows = await this.viewRows<{ id?: string }>('revocations');
    for (const [key, row] of rows) {
      if (key.endsWith(` ${this.me}`) && row.id) await this.noteRevocation(row.id);
    }
  }

  /** If revoke entry `id` (ours) targets one of our grants, that grant's subscription is done. */
  private async noteRevocation(id: string): Promise<void> {
    const revoke = (await this.ask('journal', 'get', { id })) as {
      body?: { target?: string };
    } | null;
    const target = revoke?.body?.target;
    if (!target) return;
    const grant = (await this.ask('journal', 'get', { id: target })) as {
      author?: string;
      kind?: string;
      body?: { subscription?: string };
    } | null;
    if (grant?.kind === 'grant' && grant.author === this.me && grant.body?.subscription) {
      this.revokedGrantSubs.add(grant.body.subscription);
    }
  }

  private async approvedStill(subscription: string): Promise<boolean> {
    const lookup = this.lookup();
    const approval = await lookup.approval(subscription);
    return approval !== undefined && !(await lookup.revoked(approval, this.me));
  }

  private async ungrant(g: LiveGrant, reason: 'revoked' | 'expired' | 'withdrawn'): Promise<void> {
    if (this.live.get(g.subscription) !== g) return;
    this.live.delete(g.subscription);
    this.liveGauge.set(this.live.size);
    this.audit.append({
      kind: 'ungrant',
      reason,
      grant: g.grant,
      subscriber: g.subscriber,
      service: g.service,
      ip: g.ip,
    });
    try {
      await this.ask('nft', 'apply', {
        add: [],
        remove: [{ proto: g.proto, port: g.port, ip: g.ip }],
      });
    } catch (err) {
      this.log.warn({ err, grant: g.grant }, 'element removal failed; reconcile retries');
    }
    try {
      await this.ask('journal', 'append', {
        kind: 'ungrant',
        body: { grant: g.grant, subscriber: g.subscriber, service: g.service, ip: g.ip, reason },
        requestId: `ungrant-${g.grant.slice(0, 40)}`,
      });
    } catch (err) {
      this.log.warn({ err, grant: g.grant }, 'ungrant entry not written');
    }
  }

  // --- operator verbs --------------------------------------------------------

  private async adminOnOffer(d: unknown): Promise<unknown> {
    const { service, port, proto, mode, leaseSeconds, requestId } = (d ?? {}) as Record<
      string,
      unknown
    >;
    return this.append('offer', { service, port, proto, mode, leaseSeconds }, requestId);
  }

  private async adminOnSubscribe(d: unknown): Promise<unknown> {
    const { provider, service, requestId } = (d ?? {}) as Record<string, unknown>;
    return this.append('subscribe', { provider, service }, requestId);
  }

  private async adminOnApprove(d: unknown): Promise<unknown> {
    const { subscription, requestId } = (d ?? {}) as Record<string, unknown>;
    const sub = await this.lookup().subscription(String(subscription));
    if (!sub || sub.provider !== this.me) {
      throw E.ERR_BAD_REQUEST('approve: no subscription to one of our services with that id',
      );
    }
    return this.append('approve', { subscription }, requestId);
  }

  private async adminOnRevoke(d: unknown): Promise<unknown> {
    const { target, requestId } = (d ?? {}) as Record<string, unknown>;
    const entry = (await this.ask('journal', 'get', { id: String(target) })) as {
      author?: string;
    } | null;
    if (!entry || entry.author !== this.me) {
      throw E.ERR_BAD_REQUEST('revoke: target must be an entry of this node');
    }
    return this.append('revoke', { target }, requestId);
  }

  private append(
    kind: string,
    body: Record<string, unknown>,
    requestId: unknown,
  ): Promise<unknown> {
    return this.ask('journal', 'append', {
      kind,
      body,
      requestId: typeof requestId === 'string' ? requestId : `${kind}-${randomUUID()}`,
    });
  }

  // --- consumer side ---------------------------------------------------------

  private async adminOnActivate(d: unknown): Promise<Activation> {
    const subscription = String((d as { subscription?: unknown })?.subscription);
    const sub = await this.lookup().subscription(subscription);
    if (!sub || sub.subscriber !== this.me) {
      throw E.ERR_BAD_REQUEST('activate: no subscription of ours with that id');
    }
    const node = (await this.ask('journal', 'view', { view: 'nodes', key: sub.provider })) as {
      gossip?: string;
    } | null;
    const { rid, nonce } = (await this.ask('gossip', 'grantNonce', {
      provider: sub.provider,
      url: node?.gossip,
    })) as { rid: string; nonce: string };
    const { did, sig } = (await this.ask('journal', 'signGrantRequest', {
      nonce,
      service: sub.service,
      subscription,
    })) as { did: string; sig: string };
    const res = (await this.ask(
      'gossip',
      'grantRequest',
      {
        provider: sub.provider,
        rid,
        request: { did, service: sub.service, subscription, nonce, sig },
      },
      { timeoutMs: 15_000 },
    )) as {
      ok: boolean;
      code?: string;
      reason?: string;
      endpoint?: Activation['endpoint'];
      expires?: number;
      grant?: string;
    };
    if (!res.ok)
      throw errorFromPayload(
        { code: res.code ?? 'ERR_GRANT_REFUSED', message: `provider refused: ${res.reason ?? ''}` },
        'ERR_GRANT_REFUSED',
      );
    const activation: Activation = {
      subscription,
      provider: sub.provider,
      service: sub.service,
      endpoint: res.endpoint!,
      expires: res.expires!,
      grant: res.grant!,
      at: Date.now(),
    };
    this.activations.put(activation);
    this.scheduleRenewal(activation);
    return activation;
  }

  /** Renew when `renewAt` of the lease has passed: the new lease starts before the old one ends. */
  private scheduleRenewal(a: Activation): void {
    clearTimeout(this.renewals.get(a.subscription));
    const span = a.expires - a.at;
    const delay = Math.max(1000, a.at + span * this.opts.renewAt - Date.now());
    if (a.expires <= Date.now()) return;
    const t = setTimeout(() => {
      this.renewals.delete(a.subscription);
      this.adminOnActivate({ subscription: a.subscription }).catch((err: unknown) => {
        this.log.warn({ err, subscription: a.subscription }, 'renewal failed; retrying');
        this.scheduleRenewal({ ...a, at: Date.now() - span * this.opts.renewAt + 5000 });
      });
    }, delay);
    t.unref();
    this.renewals.set(a.subscription, t);
  }

  private adminOnStatus(): Record<string, unknown> {
    return {
      did: this.me,
      live: this.live.size,
      nonces: this.nonces.size,
      activations: this.activations.all().length,
      audit: this.audit.last,
      meshCidrs: this.opts.meshCidrs,
      grantLatencyMs: this.grantLatency.slice(),
    };
  }
}
