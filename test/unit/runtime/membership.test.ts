/**
 * The membership rule (runtime/domain/membership.ts) over plain rows: who
 * is a member with which rights, who may invite and expel whom, where cuts
 * fall, and `can`/`counts` in closed and open meshes.
 */
import * as assert from 'uvu/assert';
import { MembershipIndex, NO_MESH, deriveMembership } from '../../../runtime/domain/membership.js';
import type { MemberRevokeRow, MemberRow, MeshRow } from '../../../runtime/domain/membership.js';
import type { Right } from '../../../runtime/domain/entries.js';
import { fakeId, keyOf } from '../../helpers/journal.js';
import { describe } from '../../helpers/test.js';

const test = describe('runtime/membership');

const [F, A, B, C] = [1, 2, 3, 4].map((n) => keyOf(n).did) as [string, string, string, string];
const MESH = fakeId(0x3e5);
const ALL: Right[] = [
  'member.invite',
  'member.expel',
  'service.offer',
  'config.publish',
  'operator.steer',
];

const mesh = (admission: 'closed' | 'open' = 'closed'): MeshRow => ({
  id: MESH,
  founder: F,
  name: 'm',
  admission,
  createdAt: 1,
  seq: 1,
  ts: 1,
});
let n = 0;
const member = (author: string, did: string, rights: Right[], ts: number, seq = 2): MemberRow => ({
  id: fakeId(0x1000 + ++n),
  author,
  mesh: MESH,
  did,
  rights,
  invite: fakeId(0x2000 + n),
  seq,
  ts,
});
const revoke = (
  author: string,
  did: string,
  cut: number,
  ts: number,
  seq = 3,
): MemberRevokeRow => ({
  id: fakeId(0x3000 + ++n),
  author,
  mesh: MESH,
  did,
  cut,
  seq,
  ts,
});

test('the founder alone holds every right; nobody else is a member', () => {
  const m = new MembershipIndex(deriveMembership(MESH, [mesh()], [], []));
  assert.equal(m.member(F)?.rights, ALL);
  for (const r of ALL) assert.ok(m.can(F, r), r);
  assert.not.ok(m.isMember(A));
  assert.not.ok(m.can(A, 'service.offer'), 'closed mesh: an outsider cannot offer');
  assert.not.ok(m.counts(A));
});

test('an invite counts only from a member with member.invite, for rights it holds itself', () => {
  const rows = [
    member(F, A, ['member.invite', 'service.offer'], 10),
    member(A, B, ['service.offer'], 20),
    member(A, C, ['member.expel'], 30), // A does not hold member.expel: over-privileged
  ];
  const m = new MembershipIndex(deriveMembership(MESH, [mesh()], rows, []));
  assert.ok(m.isMember(A));
  assert.is(m.member(B)?.invitedBy, A);
  assert.not.ok(m.isMember(C), 'an inviter cannot grant a right it lacks');
  assert.not.ok(m.can(B, 'member.invite'));
  assert.ok(m.can(B, 'service.offer'));
});

test('an invite by a non-member, or one ordered before its author joined, does not count', () => {
  // B invites C at ts 5, before F invites B at ts 10: the order is by ts, so it is void.
  const rows = [member(B, C, [], 5), member(F, B, ['member.invite'], 10)];
  const m = new MembershipIndex(deriveMembership(MESH, [mesh()], rows, []));
  assert.ok(m.isMember(B));
  assert.not.ok(m.isMember(C));
});

test('an expulsion by a member with member.expel cuts the feed; its invitees stay', () => {
  const rows = [member(F, A, ['member.invite'], 10), member(A, B, [], 20)];
  const cuts = [revoke(F, A, 7, 30)];
  const m = new MembershipIndex(deriveMembership(MESH, [mesh()], rows, cuts));
  assert.not.ok(m.isMember(A));
  assert.is(m.cutOf(A), 7);
  assert.ok(m.isMember(B), "the expelled member's invitees stay");
  assert.not.ok(m.counts(A));
  assert.not.ok(m.can(A, 'service.offer'));
});

test('the founder cannot be expelled, nobody expels itself, and no right means no effect', () => {
  const rows = [member(F, A, ['member.expel'], 10), member(F, B, [], 11)];
  const cuts = [revoke(A, F, 1, 20), revoke(A, A, 1, 21), revoke(B, A, 1, 22)];
  const m = new MembershipIndex(deriveMembership(MESH, [mesh()], rows, cuts));
  assert.ok(m.isMember(F));
  assert.ok(m.isMember(A));
  assert.equal(m.data.cuts, []);
});

test("an expelled member's acts after its cut are void; acts at or below it stand", () => {
  const rows = [
    member(F, A, ['member.invite'], 10, 1),
    member(A, B, [], 20, 2), // at A's seq 2: below the cut
    member(A, C, [], 40, 9), // at A's seq 9: above the cut
  ];
  const cuts = [revoke(F, A, 5, 30)];
  const m = new MembershipIndex(deriveMembership(MESH, [mesh()], rows, cuts));
  assert.ok(m.isMember(B));
  assert.not.ok(m.isMember(C));
});

test('an expelled DID cannot be invited again', () => {
  const rows = [member(F, A, [], 10), member(F, A, [], 40)];
  const cuts = [revoke(F, A, 0, 30)];
  const m = new MembershipIndex(deriveMembership(MESH, [mesh()], rows, cuts));
  assert.not.ok(m.isMember(A));
  assert.is(m.cutOf(A), 0);
});

/** Members C, D, E with every right but the founder's, invited by F at ts 1–3. */
const [D, E] = [5, 6].map((n) => keyOf(n).did) as [string, string];
const trio = () => [member(F, C, ALL, 1, 2), member(F, D, ALL, 2, 3), member(F, E, ALL, 3, 4)];
/** The rows a journal still holds once it truncated every counted cut (acts above a cut gone). */
function truncated(
  rows: MemberRow[],
  cuts: MemberRevokeRow[],
  by: ReturnType<typeof deriveMembership>,
) {
  const cutOf = new Map(by.cuts.map((c) => [c.did, c.seq]));
  const kept = <R extends { author: string; seq: number }>(r: R) =>
    !cutOf.has(r.author) || r.seq <= cutOf.get(r.author)!;
  return [rows.filter(kept), cuts.filter(kept)] as const;
}

test('three expulsions that void each other (D expels E, E expels C, C expels D below it) are undecided: none counts', () => {
  // Each at its author's seq 2, each cutting its target at 1: below the target's own expulsion.
  const rows = trio();
  const cuts = [revoke(D, E, 1, 20, 2), revoke(E, C, 1, 25, 2), revoke(C, D, 1, 30, 2)];
  const m = deriveMembership(MESH, [mesh()], rows, cuts);
  assert.equal(m.cuts, [], 'nobody is cut');
  for (const x of [C, D, E]) assert.ok(new MembershipIndex(m).isMember(x));
  // The old rule (first in time wins, later cuts retroactive) flipped here with every truncation.
  assert.equal(deriveMembership(MESH, [mesh()], ...truncated(rows, cuts, m)), m);
});

test('the founder settles such a cycle: its expulsion counts, and the verdicts follow from it', () => {
  const cuts = [
    revoke(D, E, 1, 20, 2),
    revoke(E, C, 1, 25, 2),
    revoke(C, D, 1, 30, 2),
    revoke(F, D, 1, 40, 5),
  ];
  const rows = trio();
  const m = deriveMembership(MESH, [mesh()], rows, cuts);
  const idx = new MembershipIndex(m);
  // F's cut of D voids D's act; E's expulsion of C then stands, and voids C's.
  assert.is(idx.cutOf(D), 1);
  assert.is(idx.cutOf(C), 1);
  assert.ok(idx.isMember(E));
  // Nothing the truncation removes changes it: the same answer from what a journal keeps.
  assert.equal(deriveMembership(MESH, [mesh()], ...truncated(rows, cuts, m)), m);
});

test('two members who expel each other at once (each above the cut the other names): neither counts', () => {
  const cuts = [revoke(C, D, 1, 20, 2), revoke(D, C, 1, 21, 2)];
  const m = deriveMembership(MESH, [mesh()], trio(), cuts);
  assert.equal(m.cuts, []);
  // One that saw the other's act (cut at or above it) wins: D's act is below C's cut of 2.
  const seen = [revoke(C, D, 2, 20, 3), revoke(D, C, 1, 21, 2)];
  const w = new MembershipIndex(deriveMembership(MESH, [mesh()], trio(), seen));
  assert.is(w.cutOf(C), 1, "D's expulsion of C stands: C's act lies above C's cut");
  assert.ok(w.isMember(D));
});

test('a DID invited twice holds the rights both invites gave; its inviter is the first', () => {
  const rows = [
    member(F, A, ['member.invite', 'service.offer'], 10),
    member(F, B, ['member.invite', 'member.expel'], 11),
    member(A, C, ['service.offer'], 20),
    member(B, C, ['member.expel'], 30),
  ];
  const m = new MembershipIndex(deriveMembership(MESH, [mesh()], rows, []));
  assert.equal(m.member(C)?.rights, ['member.expel', 'service.offer']);
  assert.is(m.member(C)?.invitedBy, A);
});

test('rows of another mesh are ignored', () => {
  const other = { ...member(F, A, [], 10), mesh: fakeId(0x999) };
  const m = new MembershipIndex(deriveMembership(MESH, [mesh()], [other], []));
  assert.not.ok(m.isMember(A));
});

test('the result does not depend on the order the rows are given in', () => {
  const rows = [
    member(F, A, ['member.invite', 'member.expel'], 10),
    member(A, B, ['member.expel'], 20),
    member(B, C, [], 20), // same ts as the one before: the entry id breaks the tie
  ];
  const cuts = [revoke(B, A, 3, 25)];
  const a = deriveMembership(MESH, [mesh()], rows, cuts);
  const b = deriveMembership(MESH, [mesh()], [...rows].reverse(), cuts);
  assert.equal(a, b);
});

test('open admission: outsiders may offer (a public directory) and count; other rights need membership', () => {
  const m = new MembershipIndex(deriveMembership(MESH, [mesh('open')], [], []));
  assert.ok(m.can(A, 'service.offer'));
  assert.ok(m.counts(A));
  assert.not.ok(m.can(A, 'member.invite'));
  const none = new MembershipIndex(NO_MESH);
  assert.ok(none.can(A, 'service.offer'), 'no mesh at all: open');
  assert.is(none.data.admission, 'open');
});

test("a mesh whose founding entry has not arrived is closed and empty (a joiner's first moments)", () => {
  const m = deriveMembership(MESH, [], [member(F, A, [], 1)], []);
  assert.is(m.known, false);
  assert.is(m.admission, 'closed');
  assert.equal(m.members, []);
});

test.run();
