/**
 * Invite tokens (a versioned contract: docs/formats.md, Invite tokens).
 *
 *   mni1.<base64url(canonical JSON of the payload)>.<base64url(Ed25519 sig)>
 *
 * The payload says which mesh, who invites (its DID is the key that signs),
 * where to reach it (gossip endpoints), which rights the new member gets,
 * until when, a fresh nonce and, optionally, the one DID that may redeem it.
 * The signature is over INVITE_CONTEXT + the canonical payload: the context
 * makes it unusable as an entry or handshake signature.
 *
 * Only the inviter redeems its own tokens (it appends the `member` entry as
 * the single writer of its feed), so a token never needs to be trusted by
 * anyone else; the other nodes learn the member from that entry.
 */
import { z } from 'zod';
import { blake2b256Hex, canonicalize, publicKeyFromDid, sign, verify } from '../crypto/index.js';
import type { KeyPair } from '../crypto/index.js';
import { E } from '../errors.js';
import { RIGHTS } from './entries.js';
import type { Right } from './entries.js';
import { sigFromString, sigToString } from './codec.js';

/** Signed before the payload: no other signature of the node's key can pass for an invite. */
export const INVITE_CONTEXT = 'meshnode-invite-v1\n';
/** The token's prefix: its format version. */
export const INVITE_PREFIX = 'mni1';
/** A token is pasted by hand: it stays bounded whatever the endpoints say. */
export const MAX_TOKEN_CHARS = 4096;
/** Longest an invite may be valid: a leaked token should not stay good for months. */
export const MAX_INVITE_MS = 30 * 24 * 3600_000;

const utf8 = new TextEncoder();
const DID = /^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$/;

export const invitePayloadSchema = z.strictObject({
  v: z.literal(1),
  mesh: z.string().regex(/^[0-9a-f]{64}$/),
  inviter: z.string().regex(DID),
  endpoints: z
    .array(
      z
        .string()
        .max(256)
        .regex(/^wss?:\/\/[^\s]+$/),
    )
    .max(8),
  rights: z
    .array(z.enum(RIGHTS))
    .max(RIGHTS.length)
    .refine((r) => new Set(r).size === r.length),
  expires: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  nonce: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  for: z.string().regex(DID).optional(),
});

export type InvitePayload = z.output<typeof invitePayloadSchema>;

export interface Invite {
  payload: InvitePayload;
  /** BLAKE2b-256 of the nonce: what the `member` entry records (the nonce itself stays secret). */
  nonceHash: string;
  token: string;
}

/** The bytes an invite's signature covers. */
export function inviteBytes(payload: InvitePayload): Uint8Array {
  return utf8.encode(INVITE_CONTEXT + canonicalize(payload));
}

export function nonceHashOf(nonce: string): string {
  return blake2b256Hex(utf8.encode(nonce));
}

/** Sign a payload as its inviter. */
export function encodeInvite(payload: InvitePayload, key: KeyPair): Invite {
  if (payload.inviter !== key.did) throw E.ERR_BAD_REQUEST('invite.inviter must be the signer');
  const body = Buffer.from(canonicalize(payload)).toString('base64url');
  const sig = sigToString(sign(key, inviteBytes(payload)));
  return {
    payload,
    nonceHash: nonceHashOf(payload.nonce),
    token: `${INVITE_PREFIX}.${body}.${sig}`,
  };
}

/**
 * Decode a token and check its signature under its inviter's key. Forged,
 * truncated or altered tokens are ERR_INVITE_FORGED; expiry and the rest
 * are the redeemer's checks (it knows the time, the mesh and the DID).
 */
export function decodeInvite(token: string): Invite {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS) {
    throw E.ERR_INVITE_FORGED('not an invite token (too long, or not text)');
  }
  const parts = token.trim().split('.');
  if (parts.length !== 3 || parts[0] !== INVITE_PREFIX) {
    throw E.ERR_INVITE_FORGED(`not an invite token (expected ${INVITE_PREFIX}.<payload>.<sig>)`);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
  } catch {
    throw E.ERR_INVITE_FORGED('the invite payload does not decode');
  }
  const parsed = invitePayloadSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw E.ERR_INVITE_FORGED(`invite.${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const payload = parsed.data;
  // The signed form is the canonical one: a re-encoded payload is another token.
  if (Buffer.from(canonicalize(payload)).toString('base64url') !== parts[1]) {
    throw E.ERR_INVITE_FORGED('the invite payload is not in canonical form');
  }
  let ok = false;
  try {
    ok = verify(sigFromString(parts[2]!), inviteBytes(payload), publicKeyFromDid(payload.inviter));
  } catch {
    ok = false;
  }
  if (!ok) throw E.ERR_INVITE_FORGED("the invite's signature does not verify for its inviter");
  return { payload, nonceHash: nonceHashOf(payload.nonce), token: token.trim() };
}

/** Rights in catalogue order, checked: `member.invite,service.offer`. */
export function parseRights(list: readonly string[]): Right[] {
  for (const r of list) {
    if (!(RIGHTS as readonly string[]).includes(r)) {
      throw E.ERR_BAD_REQUEST(`rights: ${r} is not a right (one of ${RIGHTS.join(', ')})`);
    }
  }
  return RIGHTS.filter((r) => list.includes(r));
}
