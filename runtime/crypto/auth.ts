/**
 * Gossip handshake signatures, made with the node key (which only the
 * journal holds). The signed bytes start with a context line that no journal
 * entry can start with (entries sign canonical JSON, which begins with `{`),
 * so a handshake signature can never be replayed as an entry signature, nor
 * the reverse.
 *
 * Transcript v2 (protocol version 2) fixes what v1 left open, found by a
 * hostile review: v1 signed {signer, peer, challenge, own} with no role, so
 * an attacker who opened a connection to each of two nodes could hand each
 * node's proof to the other (a reflection: both connections had the attacker
 * as initiator, and both proofs were valid for "the other side"). v2 signs:
 *  - the signer's role on this connection (initiator = the side that dialed);
 *  - both DIDs and both nonces, in role order, so the two signatures of one
 *    connection sign different bytes and neither fits another connection;
 *  - the channel binding: the connection's TLS exporter (RFC 5705 keying
 *    material with RFC 9266's `EXPORTER-Channel-Binding` label), so a proof
 *    made on the TLS session A↔relay does not verify on relay↔B: a relay that
 *    terminates TLS to read or inject frames cannot complete the handshake.
 * Only a link an operator configured as plaintext (loopback only) signs the
 * literal binding `plaintext`.
 */
import { z } from 'zod';
import { canonicalize } from './canonical.js';

export const GOSSIP_AUTH_CONTEXT = 'meshnode-gossip-auth-v2\n';
/** The binding signed on a plaintext link (gossip.insecure_plaintext, loopback only). */
export const PLAINTEXT_BINDING = 'plaintext';

export type HandshakeRole = 'initiator' | 'responder';

export interface HandshakeSide {
  did: string;
  nonce: string;
}

export interface AuthTranscript {
  version: number;
  /** The role of the side that signs. */
  role: HandshakeRole;
  initiator: HandshakeSide;
  responder: HandshakeSide;
  /** base64url of the connection's 32-byte TLS exporter, or PLAINTEXT_BINDING. */
  binding: string;
}

const side = z.strictObject({
  did: z.string().regex(/^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$/),
  nonce: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
});

/** What the journal agrees to sign as a handshake: exactly this shape, nothing more. */
export const authTranscriptSchema = z.strictObject({
  version: z.number().int().min(1).max(1000),
  role: z.enum(['initiator', 'responder']),
  initiator: side,
  responder: side,
  binding: z.union([z.literal(PLAINTEXT_BINDING), z.string().regex(/^[A-Za-z0-9_-]{43}$/)]),
});

export function authBytes(t: AuthTranscript): Uint8Array {
  return new TextEncoder().encode(
    GOSSIP_AUTH_CONTEXT +
      canonicalize({
        version: t.version,
        role: t.role,
        initiator: { did: t.initiator.did, nonce: t.initiator.nonce },
        responder: { did: t.responder.did, nonce: t.responder.nonce },
        binding: t.binding,
      }),
  );
}

/** The DID that signs transcript `t`: the one in its own role. */
export function authSigner(t: AuthTranscript): string {
  return t.role === 'initiator' ? t.initiator.did : t.responder.did;
}
export const GRANT_REQUEST_CONTEXT = 'meshnode-grant-request-v1\n';

/** What a consumer signs to ask a provider for access (docs/design.md §6 step 3). */
export interface GrantRequestFields {
  /** The consumer's DID: the signer. */
  did: string;
  /** The provider's single-use nonce. */
  nonce: string;
  service: string;
  subscription: string;
}

export function grantRequestBytes(r: GrantRequestFields): Uint8Array {
  return new TextEncoder().encode(
    GRANT_REQUEST_CONTEXT +
      canonicalize({
        did: r.did,
        nonce: r.nonce,
        service: r.service,
        subscription: r.subscription,
      }),
  );
}
