/**
 * Invite tokens (runtime/domain/invite.ts): they round-trip, and every
 * alteration — payload, signature, prefix, encoding, size — is refused as
 * ERR_INVITE_FORGED before anything else is looked at.
 */
import { randomBytes } from 'node:crypto';
import * as assert from 'uvu/assert';
import {
  INVITE_PREFIX,
  decodeInvite,
  encodeInvite,
  nonceHashOf,
  parseRights,
} from '../../../runtime/domain/invite.js';
import type { InvitePayload } from '../../../runtime/domain/invite.js';
import { MeshError } from '../../../runtime/errors.js';
import { fakeId, keyOf } from '../../helpers/journal.js';
import { describe } from '../../helpers/test.js';

const test = describe('runtime/invite');
const inviter = keyOf(1);
const other = keyOf(2);

const payload = (extra: Partial<InvitePayload> = {}): InvitePayload => ({
  v: 1,
  mesh: fakeId(7),
  inviter: inviter.did,
  endpoints: ['wss://10.0.0.1:7946/gossip'],
  rights: ['service.offer'],
  expires: Date.now() + 60_000,
  nonce: randomBytes(32).toString('base64url'),
  ...extra,
});

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.instance(err, MeshError);
    return (err as MeshError).code;
  }
  return 'no error';
}

test('a token round-trips: payload, nonce hash, and the token itself', () => {
  const p = payload({ for: other.did });
  const inv = encodeInvite(p, inviter);
  assert.ok(inv.token.startsWith(`${INVITE_PREFIX}.`));
  const back = decodeInvite(`  ${inv.token}\n`);
  assert.equal(back.payload, p);
  assert.is(back.nonceHash, nonceHashOf(p.nonce));
  assert.is.not(back.nonceHash, p.nonce, 'the nonce itself never goes into the journal');
});

test('only the inviter can sign its invite', () => {
  assert.is(
    code(() => encodeInvite(payload(), other)),
    'ERR_BAD_REQUEST',
  );
});

test('ERR_INVITE_FORGED: a payload altered after signing (rights widened, mesh, expiry, DID)', () => {
  const inv = encodeInvite(payload(), inviter);
  const [prefix, , sig] = inv.token.split('.');
  for (const change of [
    { rights: ['service.offer', 'member.invite'] },
    { mesh: fakeId(8) },
    { expires: Date.now() + 10 ** 9 },
    { for: other.did },
  ]) {
    const forged = { ...inv.payload, ...change };
    const body = Buffer.from(JSON.stringify(forged)).toString('base64url');
    assert.is(
      code(() => decodeInvite(`${prefix}.${body}.${sig}`)),
      'ERR_INVITE_FORGED',
      JSON.stringify(change),
    );
  }
});

test("ERR_INVITE_FORGED: signed by another key than its inviter's", () => {
  const mine = encodeInvite(payload({ inviter: other.did }), other);
  const [prefix, body] = mine.token.split('.');
  const theirs = encodeInvite(payload(), inviter).token.split('.')[2];
  assert.is(
    code(() => decodeInvite(`${prefix}.${body}.${theirs}`)),
    'ERR_INVITE_FORGED',
  );
});

test('ERR_INVITE_FORGED: not a token at all, wrong prefix, bad encoding, oversize, unknown fields', () => {
  const good = encodeInvite(payload(), inviter).token;
  const [, body, sig] = good.split('.');
  const extra = Buffer.from(JSON.stringify({ ...payload(), admin: true })).toString('base64url');
  for (const t of [
    '',
    'hello',
    `mni0.${body}.${sig}`,
    `${INVITE_PREFIX}.${body}`,
    `${INVITE_PREFIX}.!!!.${sig}`,
    `${INVITE_PREFIX}.${body}.${sig}.x`,
    `${INVITE_PREFIX}.${extra}.${sig}`,
    `${INVITE_PREFIX}.${'A'.repeat(5000)}.${sig}`,
    `${INVITE_PREFIX}.${body}.${'A'.repeat(86)}`,
    `${INVITE_PREFIX}.${body}.\u001b[2J`,
  ]) {
    assert.is(
      code(() => decodeInvite(t)),
      'ERR_INVITE_FORGED',
      JSON.stringify(t.slice(0, 40)),
    );
  }
});

test('ERR_INVITE_FORGED: a payload re-encoded out of canonical form, even with the same fields', () => {
  const inv = encodeInvite(payload(), inviter);
  const [prefix, , sig] = inv.token.split('.');
  // Same fields, pretty-printed: JSON.parse reads it the same, the signature covers the canonical form.
  const reordered = Buffer.from(JSON.stringify(inv.payload, null, 1)).toString('base64url');
  assert.is(
    code(() => decodeInvite(`${prefix}.${reordered}.${sig}`)),
    'ERR_INVITE_FORGED',
  );
});

test('rights are checked against the catalogue and put in its order', () => {
  assert.equal(parseRights(['service.offer', 'member.invite']), ['member.invite', 'service.offer']);
  assert.is(
    code(() => parseRights(['root'])),
    'ERR_BAD_REQUEST',
  );
});

test.run();
