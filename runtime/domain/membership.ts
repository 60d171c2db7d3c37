/**
 * Who is in the mesh, with which rights, and where each expelled feed is
 * cut: one pure function of the membership rows (`meshes`, `members`,
 * `memberRevokes` views), so every node that holds the same entries derives
 * the same answer whatever order they arrived in (docs/design.md §9, the
 * convergence contract; test/unit/domain/membership.test.ts and the
 * permutation property in test/unit/journal/convergence.test.ts).
 *
 * The rule, in full:
 *  - The mesh is the `mesh` entry whose id the node belongs to; its author
 *    is the founder and holds every right. The founder cannot be expelled.
 *  - Every `member` and `member-revoke` entry of that mesh is an act. Acts
 *    are replayed in (ts, id) order — a total order every node computes
 *    from the same set — over a state that starts with the founder alone.
 *  - `member` by A for D with rights R counts if, at that point, A is a
 *    member holding `member.invite`, R is a subset of A's rights, and D is
 *    not a member and was never cut (a DID is invited once; an expelled
 *    feed stays cut). D's inviter is A.
 *  - `member-revoke` by A of D at seq N counts if A is a member holding
 *    `member.expel`, D is a member and D is neither A nor the founder. D
 *    leaves; its feed is cut at N: every node keeps D's entries up to N and
 *    takes nothing after it (the journal truncates a feed it holds past a
 *    new cut, and gossip stops asking for it). The members D invited stay.
 *  - An act whose author is cut counts only if it lies at or below the cut
 *    (the journal holds nothing above it anyway).
 *
 * Membership arriving after a member's own entries is the normal case on a
 * replicating node: entries of non-members are stored and inert (no view a
 * reader shows, no grant) until their author's `member` entry arrives, so
 * the order never matters. Why not refuse them at ingest: the refusal would
 * depend on what had arrived first, and the views would not converge.
 */
import { RIGHTS } from './entries.js';
import type { Right } from './entries.js';
import type { ViewReader, ViewRowOf } from './views.js';

export { RIGHTS };
export type { Right };

/** A `mesh` row: the founding entry. */
export interface MeshRow {
  id: string;
  founder: string;
  name: string;
  admission: 'closed' | 'open';
  createdAt: number;
  seq: number;
  ts: number;
}

/** A `member` row: an invite redeemed. */
export interface MemberRow {
  id: string;
  author: string;
  mesh: string;
  did: string;
  rights: Right[];
  invite: string;
  seq: number;
  ts: number;
}

/** A `member-revoke` row: an expulsion. */
export interface MemberRevokeRow {
  id: string;
  author: string;
  mesh: string;
  did: string;
  /** The expelled feed is kept up to this seq. */
  cut: number;
  seq: number;
  ts: number;
}

export interface Member {
  did: string;
  rights: Right[];
  /** Null for the founder. */
  invitedBy: string | null;
  /** The `member` entry (the `mesh` entry for the founder). */
  entry: string;
  ts: number;
}

export interface Cut {
  did: string;
  seq: number;
  by: string;
  entry: string;
}

/** The derived membership: plain data, sent between actors and shown by the CLI. */
export interface Membership {
  /** The mesh this node belongs to; null when it belongs to none (an open directory). */
  mesh: string | null;
  /** Whether its `mesh` entry is here yet (a node that joined may not have it until sync). */
  known: boolean;
  name: string | null;
  admission: 'closed' | 'open';
  founder: string | null;
  members: Member[];
  cuts: Cut[];
}

const ALL_RIGHTS: Right[] = [...RIGHTS];

type Act = { t: 'member'; row: MemberRow } | { t: 'revoke'; row: MemberRevokeRow };

/** The membership of mesh `meshId` from its rows (rows of other meshes are ignored). */
export function deriveMembership(
  meshId: string | null,
  meshes: readonly MeshRow[],
  members: readonly MemberRow[],
  revokes: readonly MemberRevokeRow[],
): Membership {
  const mesh = meshId === null ? undefined : meshes.find((m) => m.id === meshId);
  if (meshId === null || !mesh) {
    // Unknown mesh: a member that joined and has not synced the founding entry
    // yet is "closed" by default (the safe side), with nobody known.
    return {
      mesh: meshId,
      known: false,
      name: null,
      admission: meshId === null ? 'open' : 'closed',
      founder: null,
      members: [],
      cuts: [],
    };
  }
  const state = new Map<string, Member>();
  state.set(mesh.founder, {
    did: mesh.founder,
    rights: ALL_RIGHTS,
    invitedBy: null,
    entry: mesh.id,
    ts: mesh.ts,
  });
  const cuts = new Map<string, Cut>();
  const acts: Act[] = [
    ...members.filter((r) => r.mesh === meshId).map((row) => ({ t: 'member' as const, row })),
    ...revokes.filter((r) => r.mesh === meshId).map((row) => ({ t: 'revoke' as const, row })),
  ];
  acts.sort((a, b) => a.row.ts - b.row.ts || (a.row.id < b.row.id ? -1 : 1));
  for (const act of acts) {
    const { author, seq } = act.row;
    const authorCut = cuts.get(author);
    if (authorCut && seq > authorCut.seq) continue;
    const by = state.get(author);
    if (!by) continue;
    if (act.t === 'member') {
      const { did, rights } = act.row;
      if (!by.rights.includes('member.invite')) continue;
      if (!rights.every((r) => by.rights.includes(r))) continue;
      if (state.has(did) || cuts.has(did)) continue;
      state.set(did, {
        did,
        rights: RIGHTS.filter((r) => rights.includes(r)),
        invitedBy: author,
        entry: act.row.id,
        ts: act.row.ts,
      });
    } else {
      const { did, cut } = act.row;
      if (!by.rights.includes('member.expel')) continue;
      if (did === author || did === mesh.founder || !state.has(did)) continue;
      state.delete(did);
      cuts.set(did, { did, seq: cut, by: author, entry: act.row.id });
    }
  }
  return {
    mesh: meshId,
    known: true,
    name: mesh.name,
    admission: mesh.admission,
    founder: mesh.founder,
    members: [...state.values()].sort((a, b) => (a.did < b.did ? -1 : 1)),
    cuts: [...cuts.values()].sort((a, b) => (a.did < b.did ? -1 : 1)),
  };
}

/**
 * Membership as a reader asks it, with O(1) lookups: `can(did, right)` is
 * the one rights check (gossip admission, grants, the CLI's catalog).
 */
export class MembershipIndex {
  private readonly members: Map<string, Member>;
  private readonly cuts: Map<string, Cut>;

  constructor(readonly data: Membership) {
    this.members = new Map(data.members.map((m) => [m.did, m]));
    this.cuts = new Map(data.cuts.map((c) => [c.did, c]));
  }

  get closed(): boolean {
    return this.data.admission === 'closed';
  }

  isMember(did: string): boolean {
    return this.members.has(did);
  }

  member(did: string): Member | undefined {
    return this.members.get(did);
  }

  /** The seq an expelled feed is cut at, or undefined. */
  cutOf(did: string): number | undefined {
    return this.cuts.get(did)?.seq;
  }

  /**
   * Whether `did` holds `right`. In a mesh with open admission (or no mesh)
   * anyone not cut may offer a service, as in a public directory; every
   * other right needs membership.
   */
  can(did: string, right: Right): boolean {
    if (this.cuts.has(did)) return false;
    const m = this.members.get(did);
    if (m) return m.rights.includes(right);
    return right === 'service.offer' && !this.closed;
  }

  /** Whether `did`'s entries count in what readers show and grant (not inert). */
  counts(did: string): boolean {
    if (this.cuts.has(did)) return false;
    return !this.closed || this.members.has(did);
  }
}

/** Membership of a node in no mesh: open, nobody cut. */
export const NO_MESH: Membership = deriveMembership(null, [], [], []);

/** Every row of `view`, page by page. */
function allRows<V extends 'meshes' | 'members' | 'memberRevokes'>(
  reader: ViewReader,
  view: V,
): Array<[string, ViewRowOf[V]]> {
  const out: Array<[string, ViewRowOf[V]]> = [];
  let after: string | undefined;
  for (;;) {
    const page = reader.viewAll(view, 1000, after);
    out.push(...page);
    if (page.length < 1000) return out;
    after = page[page.length - 1]![0];
  }
}

/** The membership of `meshId` as the views of `reader` hold it (the journal's store, or a read-only handle). */
export function readMembership(reader: ViewReader, meshId: string | null): Membership {
  if (meshId === null) return NO_MESH;
  const meshes = allRows(reader, 'meshes').map(([id, r]) => ({
    id,
    founder: r.founder,
    name: r.name,
    admission: r.admission,
    createdAt: r.createdAt,
    seq: r.seq,
    ts: r.ts,
  }));
  const members = allRows(reader, 'members').map(([id, r]) => ({ id, ...r }));
  const revokes = allRows(reader, 'memberRevokes').map(([id, r]) => ({ id, ...r }));
  return deriveMembership(meshId, meshes, members, revokes);
}
