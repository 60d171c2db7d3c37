/**
 * did:key identifiers for Ed25519 public keys (W3C CCG did:key method):
 *
 *   did:key:z<base58btc( 0xed 0x01 || publicKey[32] )>
 *
 * `z` is the multibase prefix of base58btc (Bitcoin alphabet) and 0xed 0x01
 * is the unsigned-varint multicodec `ed25519-pub` (0xed). The result is always
 * `did:key:z6Mk…`, 56 characters.
 *
 * Why @scure/base: an audited, dependency-free base58 (node has none), from
 * the same author and audit as @noble/*.
 */
import { base58 } from '@scure/base';
import { E, MeshError } from '../errors.js';

const DID_PREFIX = 'did:key:z';
/** Varint of multicodec 0xed (ed25519-pub). */
const CODEC_0 = 0xed;
const CODEC_1 = 0x01;
/** A did:key for Ed25519 is always this long (34 bytes → 47 base58 chars + prefix). */
export const ED25519_DID_LENGTH = 56;

/** The did:key of a 32-byte Ed25519 public key. */
export function didFromPublicKey(publicKey: Uint8Array): string {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32)
    throw E.ERR_BAD_KEY('an Ed25519 public key must be 32 bytes');
  const bytes = new Uint8Array(34);
  bytes[0] = CODEC_0;
  bytes[1] = CODEC_1;
  bytes.set(publicKey, 2);
  return DID_PREFIX + base58.encode(bytes);
}

/**
 * The 32-byte Ed25519 public key a did:key names. Throws
 * MeshError('ERR_BAD_DID') for anything else: not a string, another DID
 * method, a fragment or query, another multibase than base58btc, bad base58,
 * another multicodec than ed25519-pub, or a key that is not 32 bytes.
 * It checks the format only; whether the key is acceptable for signatures is
 * `verify`'s business (see ed25519.ts).
 */
export function publicKeyFromDid(did: string): Uint8Array {
  if (typeof did !== 'string') throw badDid('a did:key must be a string');
  if (!did.startsWith('did:key:')) throw badDid(`${shown(did)} is not a did:key`);
  if (!did.startsWith(DID_PREFIX))
    throw badDid(`${shown(did)} is not base58btc multibase (must start with did:key:z)`);
  if (did.length !== ED25519_DID_LENGTH)
    throw badDid(`${shown(did)} has the wrong length for an Ed25519 did:key`);
  let bytes: Uint8Array;
  try {
    bytes = base58.decode(did.slice(DID_PREFIX.length));
  } catch {
    throw badDid(`${shown(did)} is not valid base58btc`);
  }
  if (bytes.length < 2 || bytes[0] !== CODEC_0 || bytes[1] !== CODEC_1)
    throw badDid(`${shown(did)} is not an ed25519-pub key (multicodec 0xed)`);
  if (bytes.length !== 34) throw badDid(`${shown(did)} does not hold a 32-byte key`);
  return bytes.slice(2);
}

/** Whether `did` is a well-formed Ed25519 did:key. */
export function isDid(did: unknown): did is string {
  try {
    publicKeyFromDid(did as string);
    return true;
  } catch {
    return false;
  }
}

function badDid(message: string): MeshError {
  return E.ERR_BAD_DID(message);
}

/** A DID for an error message: quoted, cut to a sane length. */
function shown(did: string): string {
  return JSON.stringify(did.length > 80 ? `${did.slice(0, 77)}...` : did);
}
