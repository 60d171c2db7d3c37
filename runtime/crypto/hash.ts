/**
 * BLAKE2b-256 (BLAKE2b with a 32-byte digest, RFC 7693, no key) and hex
 * helpers. A journal entry's id is `blake2b256(canonicalBytes(entry))`.
 *
 * node:crypto offers only BLAKE2b-512, and a truncated BLAKE2b-512 is a
 * different function (the digest length is part of the parameter block), so
 * it cannot stand in. On the journal's hot path (every append and every
 * ingested entry is hashed) hash-wasm's WebAssembly BLAKE2b measured 1.5 µs
 * for a 450-byte entry against 16 µs for @noble/hashes' JS one, so hash-wasm
 * computes ids on the threads that hash a lot: the journal writer and its
 * verify pool call `loadFastHash()` once at start.
 *
 * Every other thread (gossip, grants, the supervisor) hashes a few entries
 * or audit records a second and uses @noble/hashes' BLAKE2b: creating the
 * WebAssembly hasher costs a thread about 5 MB of RSS (measured in a worker:
 * +5.0 MB with it against +0.2 MB for noble's), and idle RSS is a budgeted
 * figure. Both give the same digests (test/unit/runtime/crypto/hash.test.ts).
 */
import { createRequire } from 'node:module';
import { blake2b } from '@noble/hashes/blake2.js';
import type { IHasher, createBLAKE2b as CreateBLAKE2b } from 'hash-wasm';
import { E } from '../errors.js';

/** BLAKE2b-256: a 32-byte digest. */
const DIGEST_BYTES = 32;

/** This thread's WebAssembly hasher once `loadFastHash()` has run; init/update/digest are synchronous. */
let fast: IHasher | null = null;

/**
 * Switch this thread to hash-wasm's BLAKE2b (idempotent). Call it at the
 * start of a thread that hashes on a hot path.
 */
export async function loadFastHash(): Promise<void> {
  if (fast) return;
  // hash-wasm's index bundles every algorithm's WebAssembly as base64 strings
  // (another ~5 MB per thread that imports it); the package has no "exports"
  // map, so its BLAKE2b-only UMD build is loaded directly, typed by the index.
  const { createBLAKE2b } = createRequire(import.meta.url)('hash-wasm/dist/blake2b.umd.min.js') as {
    createBLAKE2b: typeof CreateBLAKE2b;
  };
  fast ??= await createBLAKE2b(DIGEST_BYTES * 8);
}

/** Whether this thread hashes with the WebAssembly hasher (for tests and benches). */
export function fastHashLoaded(): boolean {
  return fast !== null;
}

/** BLAKE2b-256 of `bytes`: 32 bytes. */
export function blake2b256(bytes: Uint8Array): Uint8Array {
  if (!fast) return blake2b(bytes, { dkLen: DIGEST_BYTES });
  fast.init();
  fast.update(bytes);
  return fast.digest('binary');
}

/** BLAKE2b-256 of `bytes` as lowercase hex (64 characters). */
export function blake2b256Hex(bytes: Uint8Array): string {
  return toHex(blake2b256(bytes));
}

/** Lowercase hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

const HEX = /^(?:[0-9a-fA-F]{2})*$/;

/**
 * Bytes of a hex string (either case). Strict: an odd length or any non-hex
 * character throws MeshError('ERR_BAD_ENCODING') (Buffer.from would stop
 * silently at the first bad character). `expectedLength`, if given, is the
 * required number of bytes.
 */
export function fromHex(hex: string, expectedLength?: number): Uint8Array {
  if (typeof hex !== 'string' || !HEX.test(hex))
    throw E.ERR_BAD_ENCODING('not a hex string (even length, 0-9a-f only)');
  if (expectedLength !== undefined && hex.length !== expectedLength * 2)
    throw E.ERR_BAD_ENCODING(
      `hex string encodes ${hex.length / 2} bytes, expected ${expectedLength}`,
    );
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** Constant-time-irrelevant byte equality (for public data: ids, keys, hashes). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
