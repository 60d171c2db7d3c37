/**
 * The journal's views as the authorizer reads them: typed lookups over the
 * read-only journal handle (runtime/journal-reader.ts). Reads are local and
 * synchronous — no ask to the journal — and see the last committed
 * transaction, which is at least as fresh as an answer from the journal
 * actor would be.
 */
import type { Entry } from '../../runtime/domain/codec.js';
import type { ViewName, ViewReader, ViewRowOf } from '../../runtime/domain/views.js';
import type { Service } from '../../runtime/protocol/nft.js';
import type { GrantLookup, Offer } from './checks.js';
import { MembershipIndex, NO_MESH } from '../../runtime/domain/membership.js';

/** The journal, as the authorizer reads it. */
export interface JournalViews extends ViewReader {
  byId(id: string): Entry | undefined;
  rows<V extends ViewName>(view: V): Iterable<[string, ViewRowOf[V]]>;
}

export class ViewLookup implements GrantLookup {
  /** Subscriptions whose grant we revoked: their access is over (check 7), renewals included. */
  private readonly revokedGrantSubs = new Set<string>();
  /** The mesh's membership, as the journal last told it (actor.ts keeps it current). */
  membership = new MembershipIndex(NO_MESH);

  constructor(
    private readonly views: JournalViews,
    readonly me: string,
  ) {}

  subscription(id: string): { subscriber: string; provider: string; service: string } | undefined {
    const s = this.views.view('subscriptions', id);
    return s ? { subscriber: s.subscriber, provider: s.provider, service: s.service } : undefined;
  }

  /** Our current offer of `service`. */
  offer(service: string): Offer | undefined {
    return this.offerOf(this.me, service);
  }

  /** `provider`'s standing offer of `service` (the latest, not withdrawn), if its entries count. */
  offerOf(provider: string, service: string): Offer | undefined {
    if (provider !== this.me && !this.membership.can(provider, 'service.offer')) return undefined;
    const offer = this.offerRow(provider, service);
    if (!offer || (provider !== this.me && this.revoked(offer.id, provider))) return undefined;
    return offer;
  }

  /** Our standing offers that set anySource, by service. */
  anySourceServices(): string[] {
    return this.servicesOf(this.me).filter((s) => this.offer(s)?.anySource === true);
  }

  /** The services `provider` offers now. */
  servicesOf(provider: string): string[] {
    const out: string[] = [];
    for (const [key] of this.views.rows('offersByService')) {
      const [p, service] = key.split(' ') as [string, string];
      if (p === provider && this.offerOf(provider, service)) out.push(service);
    }
    return out;
  }

  private offerRow(provider: string, service: string): Offer | undefined {
    const ref = this.views.view('offersByService', `${provider} ${service}`);
    if (!ref) return undefined;
    const o = this.views.view('offers', ref.offer);
    if (!o) return undefined;
    const { port, proto, mode, leaseSeconds } = o;
    const offer: Offer = { id: ref.offer, service: o.service, port, proto, mode, leaseSeconds };
    if (o.anySource) offer.anySource = true;
    return offer;
  }

  counts(did: string): boolean {
    return this.membership.counts(did);
  }

  recordIps(did: string): readonly string[] | undefined {
    const n = this.views.view('nodes', did);
    return n ? [n.meshIp] : undefined;
  }

  /** Why `provider` ended `grant`, if it did (its `ungrant` entry). */
  ungrant(grant: string, provider: string): 'revoked' | 'expired' | 'withdrawn' | undefined {
    return this.views.view('ungrants', `${grant} ${provider}`)?.reason;
  }

  revoked(target: string, by: string): boolean {
    return this.views.view('revocations', `${target} ${by}`) !== undefined;
  }

  grantRevoked(subscription: string): boolean {
    return this.revokedGrantSubs.has(subscription);
  }

  approval(subscription: string): string | undefined {
    return this.views.view('approvals', `${subscription} ${this.me}`)?.id;
  }

  /** A standing approval of ours (not revoked). */
  approvedStill(subscription: string): boolean {
    const approval = this.approval(subscription);
    return approval !== undefined && !this.revoked(approval, this.me);
  }

  /** A node's record: its gossip endpoint and mesh IP. */
  node(did: string): { gossip: string; meshIp: string } | undefined {
    return this.views.view('nodes', did);
  }

  /** (proto, port) of every offer of ours that stands (the latest per service, not revoked). */
  offeredServices(): Service[] {
    const out = new Map<string, Service>();
    for (const [id, o] of this.views.rows('offers')) {
      if (o.provider !== this.me) continue;
      if (this.offer(o.service)?.id !== id || this.revoked(id, this.me)) continue;
      out.set(`${o.proto}/${o.port}`, { proto: o.proto, port: o.port });
    }
    return [...out.values()];
  }

  /** Revoke entry `id`: if it is ours and targets one of our grants, that subscription's access is over. */
  noteRevocation(id: string): void {
    const target = this.views.byId(id)?.body.target;
    if (typeof target !== 'string') return;
    const grant = this.views.byId(target);
    if (grant?.kind !== 'grant' || grant.author !== this.me) return;
    const sub = grant.body.subscription;
    if (typeof sub === 'string') this.revokedGrantSubs.add(sub);
  }
}
