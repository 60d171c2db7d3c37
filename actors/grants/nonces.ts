/**
 * The provider's single-use nonces (DESIGN §6 step 3). A nonce is bound to
 * the peer it was issued to, good for `ttlMs`, and gone at first use —
 * whether that use succeeds or not — so a captured request can never be
 * replayed. The book is bounded: a peer asking for nonces it never uses
 * cannot grow our memory (the oldest are dropped first).
 */
import { randomBytes } from 'node:crypto';

/** Outstanding nonces at most; far above any honest request rate times the TTL. */
export const MAX_OUTSTANDING = 10_000;

export class NonceBook {
  private readonly issued = new Map<string, { peer: string; expiresAt: number }>();

  constructor(private readonly ttlMs: number) {}

  issue(peer: string, now = Date.now()): { nonce: string; expiresAt: number } {
    if (this.issued.size >= MAX_OUTSTANDING) {
      // Map iteration is insertion order: the first key is the oldest.
      this.issued.delete(this.issued.keys().next().value!);
    }
    const nonce = randomBytes(32).toString('base64url');
    const expiresAt = now + this.ttlMs;
    this.issued.set(nonce, { peer, expiresAt });
    return { nonce, expiresAt };
  }

  /** Use a nonce up: true only for a live one issued to `peer`. */
  consume(nonce: string, peer: string, now = Date.now()): boolean {
    const n = this.issued.get(nonce);
    this.issued.delete(nonce);
    return n !== undefined && n.peer === peer && n.expiresAt > now;
  }

  get size(): number {
    return this.issued.size;
  }
}
