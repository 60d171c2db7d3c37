/**
 * The journal, as the gossiper uses it: the actor (actor.ts) builds it from
 * typed asks (runtime/protocol/journal.ts); the mesh and sync take it as
 * plain functions, so they run without an actor around them.
 */
import type { AuthTranscript } from '../../runtime/crypto/index.js';
import type { Entry } from '../../runtime/domain/codec.js';
import type { Membership } from '../../runtime/domain/membership.js';
import type {
  IngestResult,
  Proof,
  Redeemed,
  SignedInvite,
} from '../../runtime/protocol/journal.js';

/** The journal, as the gossiper uses it. */
export interface JournalPort {
  heads(): Promise<Record<string, number>>;
  range(author: string, from: number, to: number, limit: number): Promise<Entry[]>;
  ingest(entries: unknown[]): Promise<IngestResult>;
  signAuth(t: AuthTranscript): Promise<string>;
  /** A peer's proof: whether it proves a fork is the journal's check. */
  proof(p: { author: string; seq: number; entries: unknown[] }): Promise<{ recorded: boolean }>;
  proofs(): Promise<Proof[]>;
  /** Gossip endpoints announced in `node` records. */
  nodes(): Promise<Array<{ did: string; gossip: string }>>;
  selfSynced(): Promise<void>;
  membership(): Promise<Membership>;
  signInvite(req: {
    rights?: string[];
    expiresMs?: number;
    for?: string;
    endpoints: string[];
  }): Promise<SignedInvite>;
  redeemInvite(token: string, did: string): Promise<Redeemed>;
  setMesh(mesh: string): Promise<void>;
  /** This node's record; the journal appends it only if it changed. */
  announce(record: { name: string; gossip: string; meshIp: string; version?: string }): Promise<{
    appended: boolean;
  }>;
}
