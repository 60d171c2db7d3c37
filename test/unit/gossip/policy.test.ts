/**
 * The mesh's admission rule (actors/gossip/policy.ts meshAdmission) and the
 * order discovery dials records in (recordsToDial), as pure functions.
 */
import * as assert from 'uvu/assert';
import { meshAdmission, recordsToDial } from '../../../actors/gossip/policy.js';
import { MembershipIndex, NO_MESH, deriveMembership } from '../../../runtime/domain/membership.js';
import { fakeId, keyOf } from '../../helpers/journal.js';
import { describe } from '../../helpers/test.js';

const test = describe('gossip/policy');
const [F, M, X, Y] = [1, 2, 3, 4].map((n) => keyOf(n).did) as [string, string, string, string];
const MESH = fakeId(0x77);

function closedMesh(): MembershipIndex {
  return new MembershipIndex(
    deriveMembership(
      MESH,
      [{ id: MESH, founder: F, name: 'm', admission: 'closed', createdAt: 1, seq: 1, ts: 1 }],
      [
        {
          id: fakeId(1),
          author: F,
          mesh: MESH,
          did: M,
          rights: [],
          invite: fakeId(2),
          seq: 2,
          ts: 2,
        },
        // Y joins, then is expelled.
        {
          id: fakeId(4),
          author: F,
          mesh: MESH,
          did: Y,
          rights: [],
          invite: fakeId(5),
          seq: 3,
          ts: 3,
        },
      ],
      [{ id: fakeId(3), author: F, mesh: MESH, did: Y, cut: 0, seq: 4, ts: 4 }],
    ),
  );
}

const ctx = (membership: MembershipIndex, allow: string[] = []) => ({
  meshId: membership.data.mesh,
  closed: membership.closed,
  membership,
  allowlisted: (d: string) => allow.includes(d),
});
const verdict = (v: ReturnType<typeof meshAdmission>) =>
  v.admit ? (v.joining ? 'joining' : 'admit') : v.error.code;

test('closed mesh: members in, outsiders out (ERR_NOT_ALLOWED), the allowlist and our own dials in', () => {
  const m = closedMesh();
  assert.is(verdict(meshAdmission({ did: M, trustedDial: false }, ctx(m))), 'admit');
  assert.is(verdict(meshAdmission({ did: X, trustedDial: false }, ctx(m))), 'ERR_NOT_ALLOWED');
  assert.is(verdict(meshAdmission({ did: X, trustedDial: false }, ctx(m, [X]))), 'admit');
  assert.is(verdict(meshAdmission({ did: X, trustedDial: true }, ctx(m))), 'admit');
});

test('an expelled DID is refused whatever else holds: allowlisted, dialed, or in an open mesh', () => {
  const m = closedMesh();
  assert.is(verdict(meshAdmission({ did: Y, trustedDial: true }, ctx(m, [Y]))), 'ERR_NOT_ALLOWED');
});

test('a peer of another mesh is ERR_OTHER_MESH, even a member', () => {
  const m = closedMesh();
  assert.is(
    verdict(meshAdmission({ did: M, mesh: fakeId(0x78), trustedDial: false }, ctx(m))),
    'ERR_OTHER_MESH',
  );
  assert.is(verdict(meshAdmission({ did: M, mesh: MESH, trustedDial: false }, ctx(m))), 'admit');
});

test('an invite makes the peer provisional, in any mesh or none (its redemption answers, coded)', () => {
  assert.is(
    verdict(meshAdmission({ did: X, invite: 't', trustedDial: false }, ctx(closedMesh()))),
    'joining',
  );
  const none = new MembershipIndex(NO_MESH);
  assert.is(
    verdict(meshAdmission({ did: X, invite: 't', trustedDial: false }, ctx(none))),
    'joining',
  );
});

test('open: anyone not expelled', () => {
  const none = new MembershipIndex(NO_MESH);
  assert.is(verdict(meshAdmission({ did: X, trustedDial: false }, ctx(none))), 'admit');
});

test('discovery: room for some, each node dials its own order of the same records', () => {
  const records = Array.from({ length: 20 }, (_, i) => ({
    did: keyOf(100 + i).did,
    gossip: `wss://10.0.0.${i + 1}:7946/gossip`,
  }));
  const pick = (self: string) =>
    recordsToDial(records, {
      self,
      trusted: new Set(records.map((r) => r.did)),
      linked: () => false,
      dialing: () => false,
      dropped: new Set(),
      tls: true,
      room: 3,
    });
  const a = pick(F);
  const b = pick(M);
  assert.is(a.dial.length, 3);
  assert.is(a.refused, 17);
  assert.equal(pick(F).dial, a.dial, 'the same node picks the same records');
  assert.not.equal(
    a.dial.map((r) => r.did),
    b.dial.map((r) => r.did),
    'another node picks another sample',
  );
});

test.run();
