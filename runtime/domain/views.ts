/**
 * The journal's state views (the rows are written by actors/journal/views.ts
 * in the transaction of their entry): their names and the shape of a row of
 * each, for every reader — the journal's `view` answer and the read-only
 * reader (runtime/journal-reader.ts) return these.
 */
import type { Body } from './entries.js';

export const VIEWS = [
  'nodes',
  'offers',
  'offersByService',
  'subscriptions',
  'approvals',
  'revocations',
  'grants',
  'ungrants',
  'meshes',
  'members',
  'memberRevokes',
  'invites',
] as const;
export type ViewName = (typeof VIEWS)[number];

/** A row of each view (keys: nodes by DID; offers, subscriptions, grants, meshes, members, memberRevokes by entry id; the rest `target author`). */
export interface ViewRowOf {
  nodes: Body<'node'> & { id: string; seq: number; ts: number };
  offers: { provider: string } & Body<'offer'> & { ts: number };
  offersByService: { offer: string; ts: number };
  subscriptions: { subscriber: string } & Body<'subscribe'> & { ts: number };
  approvals: { id: string; ts: number };
  revocations: { id: string; ts: number };
  grants: { provider: string } & Body<'grant'> & { ts: number };
  ungrants: { id: string; reason: Body<'ungrant'>['reason']; ts: number };
  meshes: { founder: string } & Body<'mesh'> & { seq: number; ts: number };
  members: { author: string } & Body<'member'> & { seq: number; ts: number };
  memberRevokes: { author: string } & Body<'member-revoke'> & { seq: number; ts: number };
  /** `nonceHash inviter` → the member entry that redeemed it. */
  invites: { id: string; did: string; ts: number };
}

/** Reading views, whoever holds them: the journal's store, or a read-only handle. */
export interface ViewReader {
  view<V extends ViewName>(view: V, key: string): ViewRowOf[V] | undefined;
  /** Rows in key order, at most `limit`, keys after `after` if given. */
  viewAll<V extends ViewName>(
    view: V,
    limit?: number,
    after?: string,
  ): Array<[string, ViewRowOf[V]]>;
}
