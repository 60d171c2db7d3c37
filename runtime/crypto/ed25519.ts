/**
 * Ed25519 keys, signing, and THE verification rule of meshnode.
 *
 * The rule
 * --------
 * Every node must accept exactly the same signatures, whatever OpenSSL (or
 * other library) it runs on, or two nodes can disagree about which journal
 * entries exist. Libraries differ at the edges of RFC 8032 (non-canonical
 * encodings, small-order points, cofactored vs cofactorless equation), so the
 * edges are decided here, in our own code, BEFORE any library is asked:
 *
 *   1. the signature is exactly 64 bytes and the public key exactly 32 bytes;
 *   2. S (signature bytes 32..63, little-endian) < L, where
 *      L = 2^252 + 27742317777372353535851937790883648493
 *      (no malleable S + L);
 *   3. A (the public key) and R (signature bytes 0..31) are canonical point
 *      encodings: the 255-bit little-endian y is < p = 2^255 - 19, and a point
 *      with x = 0 (y = 1 or y = p - 1) does not have the sign bit set;
 *   4. neither A nor R is a small-order point: its encoding is not one of the
 *      8 canonical encodings of the 8-torsion subgroup (SMALL_ORDER_ENCODINGS;
 *      plain byte comparison, no point decompression; with 3 this covers every
 *      encoding of a small-order point);
 *   5. then node:crypto (OpenSSL) checks the COFACTORLESS equation
 *      [S]B = R + [k]A with k = SHA-512(R || A || M) mod L, comparing the
 *      encoding of [S]B - [k]A with R byte for byte, as OpenSSL does.
 *
 * Points that are not on the curve fail in step 5. Mixed-order points (a
 * prime-order point plus a torsion component) are not rejected by 4; the
 * cofactorless equation in 5 rejects them unless the torsion component
 * cancels, the same on every node. `verifyReference` re-implements the rule
 * with @noble/curves (steps 1-4, noble's strict verify, and the cofactorless
 * equation, since noble checks the cofactored one) for differential tests;
 * it lives in reference.ts so the hot path never loads noble (~20 ms and
 * several MB per worker).
 *
 * Keys and signing
 * ----------------
 * A `KeyPair` holds the 32-byte seed (RFC 8032 private key), the public key
 * and a node:crypto private KeyObject. `sign(keyPair, msg)` signs with
 * libsodium (sodium-native) where the addon loads: about twice node:crypto's
 * rate here (bench journal.sign_vs_node_crypto; OpenSSL 3 sets up a context
 * per call), and the journal signs every local append. Ed25519 signatures are
 * deterministic, so both give the same bytes (a unit test holds them to it);
 * node:crypto is the fallback, and signs for KeyObject and seed arguments.
 * A KeyPair never shows its seed when logged (`toJSON` and `util.inspect`
 * print the did only); `exportSeed()` is the only way out, for key files.
 *
 * Key files (writeKeyFile / readKeyFile) are key-file.ts.
 */
import {
  createPrivateKey,
  createPublicKey,
  KeyObject,
  randomBytes,
  sign as nodeSign,
  verify as nodeVerify,
} from 'node:crypto';
import { createRequire } from 'node:module';
import { inspect } from 'node:util';
import { E } from '../errors.js';
import { didFromPublicKey } from './did-key.js';

/**
 * libsodium's signer: loaded on the first sign with a KeyPair (only the
 * journal signs; other threads that import this file never map the addon);
 * null where the addon does not load (see Keys and signing).
 */
let sodium: Sodium | null | undefined;

export const SIGNATURE_LENGTH = 64;
export const PUBLIC_KEY_LENGTH = 32;
export const SEED_LENGTH = 32;

// ---------------------------------------------------------------------------
// The pre-checks (steps 1-4 of the rule)

/** L = 2^252 + 27742317777372353535851937790883648493, little-endian. */
const L_LE = Uint8Array.from(
  Buffer.from('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010', 'hex'),
);

/**
 * The 8 canonical encodings of the small-order points (the 8-torsion
 * subgroup): identity, the point of order 2, the two of order 4 and the four
 * of order 8. The unit test re-derives this list with @noble/curves.
 */
export const SMALL_ORDER_ENCODINGS: readonly string[] = Object.freeze([
  '0100000000000000000000000000000000000000000000000000000000000000', // (0, 1) identity
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // (0, -1) order 2
  '0000000000000000000000000000000000000000000000000000000000000000', // (+-sqrt(-1), 0) order 4
  '0000000000000000000000000000000000000000000000000000000000000080',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', // order 8
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
]);

/** Encodings with x = 0 and the sign bit set: y = 1 and y = p - 1 with bit 255 set (non-canonical). */
const X_ZERO_SIGN_SET: readonly string[] = [
  '0100000000000000000000000000000000000000000000000000000000000080',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
];

/** Every 32-byte encoding rejected by byte comparison (steps 3b and 4). */
const BLOCKED: readonly Uint8Array[] = [...SMALL_ORDER_ENCODINGS, ...X_ZERO_SIGN_SET].map((h) =>
  Uint8Array.from(Buffer.from(h, 'hex')),
);
/** First bytes of BLOCKED, to skip the full comparison for almost every key. */
const BLOCKED_FIRST = new Uint8Array(256);
for (const b of BLOCKED) BLOCKED_FIRST[b[0]!] = 1;

/** S < L, S being bytes 32..63 of `sig` (little-endian). */
function scalarIsCanonical(sig: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    const s = sig[32 + i]!;
    const l = L_LE[i]!;
    if (s < l) return true;
    if (s > l) return false;
  }
  return false; // S == L
}

/** y (the low 255 bits of bytes off..off+31, little-endian) < p = 2^255 - 19. */
function yIsCanonical(b: Uint8Array, off: number): boolean {
  if ((b[off + 31]! & 0x7f) !== 0x7f) return true;
  for (let i = 30; i >= 1; i--) if (b[off + i] !== 0xff) return true;
  return b[off]! < 0xed;
}

/** Whether bytes off..off+31 equal one of BLOCKED. */
function isBlocked(b: Uint8Array, off: number): boolean {
  if (BLOCKED_FIRST[b[off]!] === 0) return false;
  outer: for (const e of BLOCKED) {
    for (let i = 0; i < 32; i++) if (b[off + i] !== e[i]) continue outer;
    return true;
  }
  return false;
}

/**
 * Steps 1-4 of the rule: lengths, S < L, canonical A and R, neither of small
 * order. True when the library may be asked (step 5); false means invalid.
 */
export function precheck(sig: Uint8Array, publicKey: Uint8Array): boolean {
  return (
    sig instanceof Uint8Array &&
    publicKey instanceof Uint8Array &&
    sig.length === SIGNATURE_LENGTH &&
    publicKey.length === PUBLIC_KEY_LENGTH &&
    scalarIsCanonical(sig) &&
    yIsCanonical(publicKey, 0) &&
    yIsCanonical(sig, 0) &&
    !isBlocked(publicKey, 0) &&
    !isBlocked(sig, 0)
  );
}

// ---------------------------------------------------------------------------
// node:crypto KeyObjects

/** DER SubjectPublicKeyInfo header for an Ed25519 key (RFC 8410); the 32 key bytes follow. */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
/** DER PKCS#8 header for an Ed25519 private key (RFC 8410); the 32 seed bytes follow. */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** Public KeyObjects by key, least recently used first; many entries share few authors. */
const publicKeys = new Map<string, KeyObject>();
let publicKeyCacheSize = 4096;

/** Bound the public KeyObject cache (entries); 0 disables it. For tests and tuning. */
export function setPublicKeyCacheSize(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0)
    throw E.ERR_INVALID_OPTION('publicKeyCacheSize must be a non-negative integer');
  publicKeyCacheSize = n;
  while (publicKeys.size > n) publicKeys.delete(publicKeys.keys().next().value!);
}

/** Entries in the public KeyObject cache now (for tests and metrics). */
export function publicKeyCacheEntries(): number {
  return publicKeys.size;
}

/** The node:crypto KeyObject of a 32-byte public key (cached, LRU). */
export function publicKeyObject(publicKey: Uint8Array): KeyObject {
  const id = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString(
    'latin1',
  );
  const hit = publicKeys.get(id);
  if (hit !== undefined) {
    publicKeys.delete(id);
    publicKeys.set(id, hit);
    return hit;
  }
  const key = createPublicKey({
    key: Buffer.concat([SPKI_PREFIX, publicKey]),
    format: 'der',
    type: 'spki',
  });
  if (publicKeyCacheSize > 0) {
    if (publicKeys.size >= publicKeyCacheSize) publicKeys.delete(publicKeys.keys().next().value!);
    publicKeys.set(id, key);
  }
  return key;
}

function privateKeyObject(seed: Uint8Array): KeyObject {
  const der = Buffer.concat([PKCS8_PREFIX, seed]);
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}

function asBytes(buf: Buffer): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

// ---------------------------------------------------------------------------
// Keys

/** An Ed25519 key pair. Logging it shows its did only. */
export class KeyPair {
  /** The 32-byte public key. */
  readonly publicKey: Uint8Array;
  readonly #seed: Uint8Array;
  readonly #privateKey: KeyObject;
  /** libsodium's 64-byte secret key (seed || public key), built on the first sign. */
  #sodiumKey: Buffer | undefined;
  #did: string | undefined;

  /** Use `keyPairFromSeed` or `generateKeyPair`. */
  constructor(seed: Uint8Array, privateKey: KeyObject, publicKey: Uint8Array) {
    this.#seed = seed;
    this.#privateKey = privateKey;
    this.publicKey = publicKey;
  }

  /** did:key of the public key. */
  get did(): string {
    return (this.#did ??= didFromPublicKey(this.publicKey));
  }

  /** The node:crypto private KeyObject (for `sign`). */
  get privateKey(): KeyObject {
    return this.#privateKey;
  }

  /** Sign with libsodium (the caller checked that it loaded). */
  signSodium(msg: Uint8Array): Uint8Array {
    if (!this.#sodiumKey) {
      const publicKey = Buffer.alloc(PUBLIC_KEY_LENGTH);
      this.#sodiumKey = Buffer.alloc(sodium!.crypto_sign_SECRETKEYBYTES);
      // A view of the seed, not a copy: no stray copy of the secret on the heap.
      sodium!.crypto_sign_seed_keypair(publicKey, this.#sodiumKey, asBuffer(this.#seed));
      // Both libraries derive the key from the seed: they must agree, or nothing signed is valid.
      if (!publicKey.equals(this.publicKey)) {
        this.#sodiumKey = undefined;
        throw E.ERR_BAD_KEY('libsodium derived another public key from the seed');
      }
    }
    const sig = new Uint8Array(SIGNATURE_LENGTH);
    sodium!.crypto_sign_detached(asBuffer(sig), asBuffer(msg), this.#sodiumKey);
    return sig;
  }

  /** A copy of the 32-byte seed: the secret. Only key files need it. */
  exportSeed(): Uint8Array {
    return this.#seed.slice();
  }

  toJSON(): { type: 'ed25519'; did: string } {
    return { type: 'ed25519', did: this.did };
  }

  [inspect.custom](): string {
    return `KeyPair { ed25519 ${this.did} }`;
  }

  toString(): string {
    return `KeyPair(ed25519 ${this.did})`;
  }
}

/** The key pair of a 32-byte seed (RFC 8032 private key). The seed is copied. */
export function keyPairFromSeed(seed: Uint8Array): KeyPair {
  if (!(seed instanceof Uint8Array) || seed.length !== SEED_LENGTH)
    throw E.ERR_BAD_KEY(`an Ed25519 seed must be ${SEED_LENGTH} bytes`);
  const privateKey = privateKeyObject(seed);
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const publicKey = Uint8Array.from(spki.subarray(spki.length - PUBLIC_KEY_LENGTH));
  return new KeyPair(Uint8Array.from(seed), privateKey, publicKey);
}

/** A fresh random key pair (seed from the OS CSPRNG). */
export function generateKeyPair(): KeyPair {
  const seed = randomBytes(SEED_LENGTH);
  try {
    return keyPairFromSeed(seed);
  } finally {
    seed.fill(0);
  }
}

/**
 * Sign `msg` (RFC 8032 Ed25519, deterministic): 64 bytes. `key` is a KeyPair
 * (fast: its KeyObject is built once), a private Ed25519 KeyObject, or a
 * 32-byte seed (slower: builds a KeyObject per call).
 */
export function sign(key: KeyPair | KeyObject | Uint8Array, msg: Uint8Array): Uint8Array {
  let keyObject: KeyObject;
  if (key instanceof KeyPair) {
    if (sodiumLoaded() && msg instanceof Uint8Array) return key.signSodium(msg);
    keyObject = key.privateKey;
  } else if (key instanceof KeyObject) {
    if (key.type !== 'private' || key.asymmetricKeyType !== 'ed25519')
      throw E.ERR_BAD_KEY('sign needs a private Ed25519 key');
    keyObject = key;
  } else if (key instanceof Uint8Array && key.length === SEED_LENGTH) {
    keyObject = privateKeyObject(key);
  } else {
    throw E.ERR_BAD_KEY('sign needs a KeyPair, a private KeyObject or a 32-byte seed');
  }
  return asBytes(nodeSign(null, msg, keyObject));
}

/** Which library `sign(keyPair, msg)` uses: 'libsodium', or 'node:crypto' where the addon did not load. */
export function signingBackend(): 'libsodium' | 'node:crypto' {
  return sodiumLoaded() ? 'libsodium' : 'node:crypto';
}

// ---------------------------------------------------------------------------
// Verification

/**
 * The verification rule (see the top of this file): pre-checks, then
 * node:crypto's cofactorless verify. Never throws; anything malformed is
 * simply not a valid signature.
 */
export function verify(sig: Uint8Array, msg: Uint8Array, publicKey: Uint8Array): boolean {
  if (!precheck(sig, publicKey) || !(msg instanceof Uint8Array)) return false;
  try {
    return nodeVerify(null, msg, publicKeyObject(publicKey), sig);
  } catch {
    return false;
  }
}

type Sodium = typeof import('sodium-native');

/** Load libsodium once; true if it is there. */
function sodiumLoaded(): boolean {
  if (sodium === undefined) sodium = loadSodium();
  return sodium !== null;
}

function loadSodium(): Sodium | null {
  try {
    return createRequire(import.meta.url)('sodium-native') as Sodium;
  } catch {
    return null;
  }
}

/** A Buffer view of the same bytes (sodium-native takes Buffers). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
