/**
 * A token bucket as a pure function over a plain record: `rate` tokens a
 * second, at most `burst`. Used for per-peer frame rates (gossip) and
 * per-subscriber and global grant request rates (grants).
 */
export interface Bucket {
  tokens: number;
  at: number;
}

/** Take `n` tokens if there are that many; returns the new bucket and whether it allowed. */
export function take(
  b: Bucket,
  n: number,
  rate: number,
  burst: number,
  now: number,
): { bucket: Bucket; ok: boolean } {
  const tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
  if (tokens < n) return { bucket: { tokens, at: now }, ok: false };
  return { bucket: { tokens: tokens - n, at: now }, ok: true };
}
