/**
 * BLAKE2b-256 (BLAKE2b with a 32-byte digest, RFC 7693, no key) and hex
 * helpers. A journal entry's id is `blake2b256(canonicalBytes(entry))`.
 *
 * node:crypto offers only BLAKE2b-512, and a truncated BLAKE2b-512 is a
 * different function (the digest length is part of the parameter block), so
 * it cannot stand in. On the journal's hot path (every append and every
 * ingested entry is hashed) hash-wasm's WebAssembly BLAKE2b measured 1.5 µs
 * for a 450-byte entry against 16 µs for @noble/hashes' JS one, so hash-wasm
 * computes ids and noble stays as the reference the tests compare it with.
 */
import { createRequire } from 'node:module';
import type { createBLAKE2b as CreateBLAKE2b } from 'hash-wasm';
import { MeshError } from '../errors.js';

// hash-wasm's index bundles every algorithm's WebAssembly as base64 strings:
// importing it cost each thread ~5 MB of RSS (measured: 9.5 MB against 4.3 MB
// for this one file), and every actor that touches a journal entry imports
// this module. The package has no "exports" map, so its per-algorithm UMD
// build is loaded directly; the types come from the index.
const { createBLAKE2b } = createRequire(import.meta.url)(
  'hash-wasm/dist/blake2b.umd.min.js',
) as { createBLAKE2b: typeof CreateBLAKE2b };

/** One hasher per thread, created once: init/update/digest are synchronous after that. */
const hasher = await createBLAKE2b(256);

/** BLAKE2b-256 of `bytes`: 32 bytes. */
export function blake2b256(bytes: Uint8Array): Uint8Array {
  hasher.init();
  hasher.update(bytes);
  return hasher.digest('binary');
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
    throw new MeshError('ERR_BAD_ENCODING', 'not a hex string (even length, 0-9a-f only)');
  if (expectedLength !== undefined && hex.length !== expectedLength * 2)
    throw new MeshError(
      'ERR_BAD_ENCODING',
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
