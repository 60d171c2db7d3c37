/**
 * Gossip handshake signatures, made with the node key (which only the
 * journal holds). The signed bytes start with a context line that no journal
 * entry can start with (entries sign canonical JSON, which begins with `{`),
 * so a handshake signature can never be replayed as an entry signature, nor
 * the reverse.
 */
import { canonicalize } from './canonical.js';

export const GOSSIP_AUTH_CONTEXT = 'meshnode-gossip-auth-v1\n';

export interface AuthTranscript {
  version: number;
  /** The DID that signs. */
  signer: string;
  /** The DID it is talking to. */
  peer: string;
  /** The nonce the peer sent: the challenge. */
  challenge: string;
  /** The nonce the signer sent: binds the signature to this one session. */
  own: string;
}

export function authBytes(t: AuthTranscript): Uint8Array {
  return new TextEncoder().encode(
    GOSSIP_AUTH_CONTEXT +
      canonicalize({
        version: t.version,
        signer: t.signer,
        peer: t.peer,
        challenge: t.challenge,
        own: t.own,
      }),
  );
}

export const GRANT_REQUEST_CONTEXT = 'meshnode-grant-request-v1\n';

/** What a consumer signs to ask a provider for access (DESIGN §6 step 3). */
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
