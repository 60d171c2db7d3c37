/**
 * Crypto and identity primitives: RFC 8785 canonical JSON, BLAKE2b-256,
 * did:key (Ed25519), Ed25519 keys / sign / the pinned verification rule, key
 * files. See ed25519.ts for the rule and the key file format.
 */
export {
  assertJournalValue,
  canonicalBytes,
  canonicalize,
  MAX_JOURNAL_DEPTH,
  type JournalValue,
} from './canonical.js';
export {
  blake2b256,
  blake2b256Hex,
  bytesEqual,
  fastHashLoaded,
  fromHex,
  loadFastHash,
  toHex,
} from './hash.js';
export { didFromPublicKey, ED25519_DID_LENGTH, isDid, publicKeyFromDid } from './did-key.js';
export {
  generateKeyPair,
  KeyPair,
  keyPairFromSeed,
  precheck,
  PUBLIC_KEY_LENGTH,
  publicKeyCacheEntries,
  publicKeyObject,
  SEED_LENGTH,
  setPublicKeyCacheSize,
  sign,
  SIGNATURE_LENGTH,
  SMALL_ORDER_ENCODINGS,
  verify,
} from './ed25519.js';
export { readKeyFile, writeKeyFile, type KeyFile } from './key-file.js';
// verifyReference (noble) is imported from './reference.js' by tests only: not re-exported, so importing
// this index never loads @noble/curves.
export {
  authBytes,
  authSigner,
  authTranscriptSchema,
  GOSSIP_AUTH_CONTEXT,
  PLAINTEXT_BINDING,
  GRANT_REQUEST_CONTEXT,
  grantRequestBytes,
  type AuthTranscript,
  type GrantRequestFields,
  type HandshakeRole,
  type HandshakeSide,
} from './auth.js';
