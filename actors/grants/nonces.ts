/**
 * The provider's single-use nonces (docs/design.md §6 step 3). A nonce is bound to
 * the peer it was issued to, good for `ttlMs`, and gone at first use —
 * whether that use succeeds or not — so a captured request can never be
 * replayed. The book is bounded: a peer asking for nonces it never uses
 * cannot grow our memory, nor crowd out other peers' nonces (its own oldest
 * are dropped first, then the oldest of all).
 */
import { randomBytes } from 'node:crypto';

/** Outstanding nonces at most; far above any honest request rate times the TTL. */
export const MAX_OUTSTANDING = 10_000;
/**
 * Outstanding nonces per peer at most (its oldest go first): one peer that
 * asks and never uses cannot push the other peers' nonces out of the book.
 */
export const MAX_PER_PEER = 32;

export class NonceBook {
  private readonly issued = new Map<string, { peer: string; expiresAt: number }>();
  /** Each peer's outstanding nonces, oldest first. */
  private readonly byPeer = new Map<string, string[]>();

  constructor(private readonly ttlMs: number) {}

  issue(peer: string, now = Date.now()): { nonce: string; expiresAt: number } {
    const mine = this.byPeer.get(peer);
    if (mine && mine.length >= MAX_PER_PEER) this.forget(mine[0]!);
    else if (this.issued.size >= MAX_OUTSTANDING) {
      // Map iteration is insertion order: the first key is the oldest.
      this.forget(this.issued.keys().next().value!);
    }
    const nonce = randomBytes(32).toString('base64url');
    const expiresAt = now + this.ttlMs;
    this.issued.set(nonce, { peer, expiresAt });
    const list = this.byPeer.get(peer);
    if (list) list.push(nonce);
    else this.byPeer.set(peer, [nonce]);
    return { nonce, expiresAt };
  }

  /** Use a nonce up: true only for a live one issued to `peer`. */
  consume(nonce: string, peer: string, now = Date.now()): boolean {
    const n = this.issued.get(nonce);
    this.forget(nonce);
    return n !== undefined && n.peer === peer && n.expiresAt > now;
  }

  get size(): number {
    return this.issued.size;
  }

  private forget(nonce: string): void {
    const n = this.issued.get(nonce);
    if (!n) return;
    this.issued.delete(nonce);
    const list = this.byPeer.get(n.peer)!;
    list.splice(list.indexOf(nonce), 1);
    if (list.length === 0) this.byPeer.delete(n.peer);
  }
}
