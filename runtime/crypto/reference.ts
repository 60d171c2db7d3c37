/**
 * The pinned Ed25519 rule computed with @noble/curves instead of OpenSSL, for
 * differential tests and benchmarks only. Kept out of ed25519.ts so that the
 * hot path (every journal worker) never imports noble.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToNumberLE } from '@noble/curves/utils.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { precheck } from './ed25519.js';

const { Point } = ed25519;
const L = Point.Fn.ORDER;

/**
 * The same rule computed with @noble/curves instead of OpenSSL, for
 * differential tests only (about 10x slower): the pre-checks, noble's strict
 * RFC 8032 verify (`zip215: false`, cofactored equation), and the
 * cofactorless equation [S]B == R + [k]A, which is what OpenSSL checks and so
 * what the rule pins.
 */
export function verifyReference(sig: Uint8Array, msg: Uint8Array, publicKey: Uint8Array): boolean {
  if (!precheck(sig, publicKey) || !(msg instanceof Uint8Array)) return false;
  try {
    if (!ed25519.verify(sig, msg, publicKey, { zip215: false })) return false;
    const r = sig.subarray(0, 32);
    const A = Point.fromBytes(publicKey, false);
    const R = Point.fromBytes(r, false);
    const S = bytesToNumberLE(sig.subarray(32, 64));
    const digest = sha512.create().update(r).update(publicKey).update(msg).digest();
    const k = bytesToNumberLE(digest) % L;
    return Point.BASE.multiplyUnsafe(S).equals(R.add(A.multiplyUnsafe(k)));
  } catch {
    return false;
  }
}
