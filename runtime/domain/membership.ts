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
 *    member holding `member.invite`, R is a subset of A's rights, and D has
 *    not left (an expelled feed stays cut). D's inviter is the first such
 *    A; a second counted invite adds its rights (D holds the union).
 *  - `member-revoke` by A of D at seq N counts if A is a member holding
 *    `member.expel`, D was admitted before it and D is neither A nor the
 *    founder, and no counted act voids it (decideExpulsions). D leaves;
 *    its feed is cut at N: D's entries above N count for nothing (the
 *    journal keeps the CUT_EVIDENCE after it, inert, truncates a feed it
 *    holds past that, and gossip stops asking). The members D invited stay.
 *    Several counted expulsions of one feed cut it at the lowest cut.
 *  - An act whose author is cut counts only if it lies at or below the cut,
 *    whenever it was made (the expeller saw the feed up to there). Acts
 *    that void each other are judged by decideExpulsions.
 *  - Nodes keep CUT_EVIDENCE entries of a cut feed above its cut, inert,
 *    and take nothing beyond.
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

/**
 * Entries of an expelled feed kept above its cut, inert: the evidence of
 * what its member did concurrently with the expulsion. Two members that
 * expel each other at once each wrote their act above the cut the other
 * names; a node that stopped the feed exactly at the cut would never see
 * the other act, and which expulsion it believed would depend on which
 * arrived first. With the acts of the window on every node, both are
 * seen and judged alike (decideExpulsions). Bounded, so an expelled node
 * cannot make the mesh store more than this of its writing; an act
 * further above the cut than this was not concurrent with it.
 */
export const CUT_EVIDENCE = 64;

/** The last seq of a feed cut at `cut` that any node keeps: the one rule for the window. */
export function keptThrough(cut: number): number {
  return cut + CUT_EVIDENCE;
}

type Act = { t: 'member'; row: MemberRow } | { t: 'revoke'; row: MemberRevokeRow };

/** An expulsion's standing while the rule decides (see deriveMembership). */
type Label = 'in' | 'out' | 'undecided';

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
  const acts: Act[] = [
    ...members.filter((r) => r.mesh === meshId).map((row) => ({ t: 'member' as const, row })),
    ...revokes.filter((r) => r.mesh === meshId).map((row) => ({ t: 'revoke' as const, row })),
  ];
  acts.sort((a, b) => a.row.ts - b.row.ts || (a.row.id < b.row.id ? -1 : 1));
  const labels = decideExpulsions(mesh, acts);
  const applied = new Set([...labels].filter(([, l]) => l === 'in').map(([id]) => id));
  const { state, cuts } = replay(mesh, acts, applied);
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
 * Which expulsions count. An expulsion of D at cut N voids D's acts above
 * N whatever their time (the expeller had seen D only up to N), so
 * expulsions can void each other: D expels E, E expels C, C expels D below
 * D's act. Replaying in time order and letting the first one win made the
 * answer depend on what a node held — a counted expulsion truncated the act
 * that had made another one fail, and the cuts flipped with every
 * truncation. The verdict here reads no act that any verdict voids
 * (grounded semantics, as in argumentation): every expulsion starts
 * undecided; one counts ("in") if it stands even when every undecided
 * expulsion is assumed to count (the restrictive replay), and fails ("out")
 * if it fails even when none of them counts (the permissive replay); repeat
 * until nothing changes. Both replays are monotone — more expulsions
 * applied, fewer members, fewer rights (a DID's rights are the union of its
 * counted invites) — so a verdict, once given, holds. What is left
 * undecided voids itself in a cycle and counts for nothing: none of its
 * cuts applies, nothing of it is truncated, and a member outside the
 * cycle (the founder, whose acts nobody can void) settles it by expelling
 * one of them.
 */
function decideExpulsions(mesh: MeshRow, acts: readonly Act[]): Map<string, Label> {
  const labels = new Map<string, Label>();
  for (const a of acts) {
    if (a.t !== 'revoke') continue;
    const { did, author } = a.row;
    labels.set(a.row.id, did === author || did === mesh.founder ? 'out' : 'undecided');
  }
  // Most meshes expel nobody: nothing to decide, no replay spent on it.
  if (![...labels.values()].includes('undecided')) return labels;
  for (;;) {
    const inSet = new Set<string>();
    const notOut = new Set<string>();
    for (const [id, l] of labels) {
      if (l === 'in') inSet.add(id);
      if (l !== 'out') notOut.add(id);
    }
    const permissive = replay(mesh, acts, inSet).valid;
    const restrictive = replay(mesh, acts, beyondWindowDropped(acts, notOut)).valid;
    let changed = false;
    for (const [id, l] of labels) {
      if (l !== 'undecided') continue;
      if (restrictive.has(id)) labels.set(id, 'in');
      else if (!permissive.has(id)) labels.set(id, 'out');
      else continue;
      changed = true;
    }
    if (!changed) return labels;
  }
}

/**
 * `applied` without the expulsions that lie further above a cut of their
 * author by another of `applied` than the evidence window: such an act was
 * not concurrent with that cut (its author wrote on for CUT_EVIDENCE
 * entries first), and a node that stopped the feed at the window never
 * holds it — judged with it here, a node that happened to hold it would
 * decide otherwise than every other node.
 */
function beyondWindowDropped(acts: readonly Act[], applied: ReadonlySet<string>): Set<string> {
  const window = new Map<string, number>();
  for (const a of acts) {
    if (a.t !== 'revoke' || !applied.has(a.row.id)) continue;
    const keep = keptThrough(a.row.cut);
    window.set(a.row.did, Math.min(window.get(a.row.did) ?? Infinity, keep));
  }
  const out = new Set(applied);
  for (const a of acts) {
    if (a.t === 'revoke' && a.row.seq > (window.get(a.row.author) ?? Infinity))
      out.delete(a.row.id);
  }
  return out;
}

/**
 * One replay in (ts, id) order with the expulsions in `applied` counting:
 * the members and cuts it ends with, and the expulsions whose author could
 * expel at their point (`valid`). A feed expelled by several counts is cut
 * at the lowest of their cuts, and its member leaves at the first of them.
 */
function replay(
  mesh: MeshRow,
  acts: readonly Act[],
  applied: ReadonlySet<string>,
): { state: Map<string, Member>; cuts: Map<string, Cut>; valid: Set<string> } {
  const cuts = new Map<string, Cut>();
  for (const a of acts) {
    if (a.t !== 'revoke' || !applied.has(a.row.id)) continue;
    const { did, cut, author, id } = a.row;
    const before = cuts.get(did);
    if (!before || cut < before.seq) cuts.set(did, { did, seq: cut, by: author, entry: id });
  }
  const state = new Map<string, Member>();
  state.set(mesh.founder, {
    did: mesh.founder,
    rights: ALL_RIGHTS,
    invitedBy: null,
    entry: mesh.id,
    ts: mesh.ts,
  });
  const left = new Set<string>();
  /** Admitted at some point so far (leaving does not undo it: kept monotone, see decideExpulsions). */
  const admitted = new Set<string>([mesh.founder]);
  const valid = new Set<string>();
  for (const act of acts) {
    const { author, seq } = act.row;
    // Above its author's cut an act is void, whenever it was made.
    const authorCut = cuts.get(author);
    if (authorCut && seq > authorCut.seq) continue;
    const by = state.get(author);
    if (!by) continue;
    if (act.t === 'member') {
      const { did, rights } = act.row;
      if (!by.rights.includes('member.invite')) continue;
      if (!rights.every((r) => by.rights.includes(r))) continue;
      // A DID that left (or whose feed is cut) is not invited again.
      if (left.has(did) || did === mesh.founder) continue;
      const known = state.get(did);
      if (known) {
        // Invited twice: the rights either inviter gave (kept monotone: see decideExpulsions).
        known.rights = RIGHTS.filter((r) => known.rights.includes(r) || rights.includes(r));
        continue;
      }
      state.set(did, {
        did,
        rights: RIGHTS.filter((r) => rights.includes(r)),
        invitedBy: author,
        entry: act.row.id,
        ts: act.row.ts,
      });
      admitted.add(did);
    } else {
      // Only a member can be expelled: one admitted before this act.
      if (!by.rights.includes('member.expel') || !admitted.has(act.row.did)) continue;
      valid.add(act.row.id);
      if (!applied.has(act.row.id)) continue;
      state.delete(act.row.did);
      left.add(act.row.did);
    }
  }
  // A cut feed never counts as a member, even one expelled before its invite was seen.
  for (const did of cuts.keys()) state.delete(did);
  return { state, cuts, valid };
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

  /** The last seq of an expelled feed any node keeps (its cut plus the evidence window), or undefined. */
  keptThrough(did: string): number | undefined {
    const cut = this.cuts.get(did);
    return cut ? keptThrough(cut.seq) : undefined;
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
