/**
 * The directory as an operator reads it (`meshnode nodes`, `services`,
 * `subscriptions`, `members`): pages of rows derived from the views and the
 * membership, over any ViewReader (the journal's store; a read-only handle
 * in the bench). Entries of authors that do not count (non-members of a
 * closed mesh, expelled feeds) are stored but never listed: membership.ts
 * explains why they are kept inert rather than refused.
 *
 * Paging: rows come in key order (DID for nodes, entry id for the rest);
 * `next` is the key to pass as `after` for the next page, null at the end.
 */
import type { MembershipIndex } from '../../runtime/domain/membership.js';
import type { ViewName, ViewReader, ViewRowOf } from '../../runtime/domain/views.js';
import type {
  CatalogPage,
  MemberRow,
  NodeRow,
  NodesPage,
  ServiceRow,
  SubscriptionRow,
} from '../../runtime/protocol/journal.js';

/** Rows scanned per read while filling a page. */
const SCAN_CHUNK = 1000;

export class Catalog {
  /**
   * Node names by DID, read once per catalog: a page of services names
   * about as many providers as rows, and the whole list names each provider
   * once per offer. The journal keeps one Catalog until its next commit.
   */
  private readonly names = new Map<string, string | null>();

  constructor(
    private readonly views: ViewReader,
    private readonly membership: MembershipIndex,
    private readonly self: string,
  ) {}

  nodes(after: string | undefined, limit: number): NodesPage {
    const selfRecord = this.views.view('nodes', this.self) !== undefined;
    const page = this.page('nodes', after, limit, (did, r) => {
      if (did !== this.self && !this.membership.counts(did)) return undefined;
      const row: NodeRow = {
        did,
        name: r.name,
        gossip: r.gossip,
        meshIp: r.meshIp,
        version: r.version ?? null,
        announcedAt: r.ts,
        member: this.membership.isMember(did),
        self: did === this.self,
      };
      return row;
    });
    return { ...page, selfRecord };
  }

  services(after: string | undefined, limit: number): CatalogPage<ServiceRow> {
    const mine = this.mySubscriptions();
    return this.page('offers', after, limit, (id, o) => {
      if (!this.standingOffer(id, o)) return undefined;
      const sub = mine.get(`${o.provider} ${o.service}`);
      const row: ServiceRow = {
        offer: id,
        provider: o.provider,
        providerName: this.nameOf(o.provider),
        service: o.service,
        port: o.port,
        proto: o.proto,
        mode: o.mode,
        leaseSeconds: o.leaseSeconds,
        anySource: o.anySource === true,
        subscription: sub
          ? { id: sub, state: this.subscriptionState(sub, o.provider, o.mode) }
          : null,
      };
      return row;
    });
  }

  subscriptions(after: string | undefined, limit: number): CatalogPage<SubscriptionRow> {
    return this.page('subscriptions', after, limit, (id, s) => {
      const mine = s.subscriber === this.self;
      if (!mine && s.provider !== this.self) return undefined;
      if (!mine && !this.membership.counts(s.subscriber)) return undefined;
      const offer = this.views.view('offersByService', `${s.provider} ${s.service}`);
      const mode = offer ? this.views.view('offers', offer.offer)?.mode : undefined;
      const row: SubscriptionRow = {
        id,
        direction: mine ? 'mine' : 'to me',
        subscriber: s.subscriber,
        subscriberName: this.nameOf(s.subscriber),
        provider: s.provider,
        providerName: this.nameOf(s.provider),
        service: s.service,
        state: this.subscriptionState(id, s.provider, mode),
        subscribedAt: s.ts,
      };
      return row;
    });
  }

  members(): CatalogPage<MemberRow> {
    const rows: MemberRow[] = this.membership.data.members.map((m) => ({
      did: m.did,
      name: this.views.view('nodes', m.did)?.name ?? null,
      rights: m.rights,
      invitedBy: m.invitedBy,
      invitedByName: m.invitedBy ? (this.views.view('nodes', m.invitedBy)?.name ?? null) : null,
      entry: m.entry,
      since: m.ts,
      expelled: null,
    }));
    for (const c of this.membership.data.cuts) {
      rows.push({
        did: c.did,
        name: this.views.view('nodes', c.did)?.name ?? null,
        rights: [],
        invitedBy: null,
        invitedByName: null,
        entry: c.entry,
        since: 0,
        expelled: { by: c.by, cut: c.seq },
      });
    }
    return { rows, next: null };
  }

  private nameOf(did: string): string | null {
    let name = this.names.get(did);
    if (name === undefined) {
      name = this.views.view('nodes', did)?.name ?? null;
      this.names.set(did, name);
    }
    return name;
  }

  /** The latest offer of its provider for its service, not withdrawn, by an author that counts. */
  private standingOffer(id: string, o: ViewRowOf['offers']): boolean {
    if (o.provider !== this.self && !this.membership.can(o.provider, 'service.offer')) return false;
    if (this.views.view('offersByService', `${o.provider} ${o.service}`)?.offer !== id)
      return false;
    return this.views.view('revocations', `${id} ${o.provider}`) === undefined;
  }

  /** This node's subscriptions that stand, by `provider service`. */
  private mySubscriptions(): Map<string, string> {
    const out = new Map<string, string>();
    let after: string | undefined;
    for (;;) {
      const page = this.views.viewAll('subscriptions', SCAN_CHUNK, after);
      for (const [id, s] of page) {
        if (s.subscriber !== this.self) continue;
        if (this.views.view('revocations', `${id} ${this.self}`)) continue;
        out.set(`${s.provider} ${s.service}`, id);
      }
      if (page.length < SCAN_CHUNK) return out;
      after = page[page.length - 1]![0];
    }
  }

  private subscriptionState(
    id: string,
    provider: string,
    mode: 'auto' | 'manual' | undefined,
  ): SubscriptionRow['state'] {
    const sub = this.views.view('subscriptions', id);
    if (sub && this.views.view('revocations', `${id} ${sub.subscriber}`)) return 'revoked';
    if (mode === undefined) return 'no offer';
    if (mode === 'auto') return 'auto';
    const approval = this.views.view('approvals', `${id} ${provider}`);
    if (!approval) return 'pending';
    return this.views.view('revocations', `${approval.id} ${provider}`) ? 'revoked' : 'approved';
  }

  /** Fill a page of at most `limit` rows from `view`, skipping the keys `make` drops. */
  private page<V extends ViewName, R>(
    view: V,
    after: string | undefined,
    limit: number,
    make: (key: string, row: ViewRowOf[V]) => R | undefined,
  ): CatalogPage<R> {
    const rows: R[] = [];
    let cursor = after;
    for (;;) {
      const chunk = this.views.viewAll(view, SCAN_CHUNK, cursor);
      for (const [key, value] of chunk) {
        cursor = key;
        const row = make(key, value);
        if (row === undefined) continue;
        rows.push(row);
        if (rows.length === limit) return { rows, next: key };
      }
      if (chunk.length < SCAN_CHUNK) return { rows, next: null };
    }
  }
}
