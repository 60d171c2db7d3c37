/**
 * The gossip handshake as a raw test client speaks it (no project protocol
 * code, only the transcript bytes of runtime/crypto/auth.ts): the URL and
 * socket options of a TLS 1.3 link, the connection's channel binding, and
 * the signatures of either role.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { sigToString } from '../../actors/journal/codec.js';
import { channelBinding } from '../../actors/gossip/tls.js';
import { authBytes, sign } from '../../runtime/crypto/index.js';
import type { AuthTranscript, HandshakeRole, KeyPair } from '../../runtime/crypto/index.js';

/** The protocol version the node speaks. */
export const WIRE_VERSION = 2;

/** What a raw client passes to `new WebSocket`: TLS 1.3, no certificate check (did:key authenticates). */
export const RAW_TLS = {
  minVersion: 'TLSv1.3',
  maxVersion: 'TLSv1.3',
  rejectUnauthorized: false,
} as const;

export const rawUrl = (port: number, path = '/gossip', host = '127.0.0.1', tls = true): string =>
  `${tls ? 'wss' : 'ws'}://${host}:${port}${path}`;

/** The channel binding of a client's WebSocket (its TLS exporter, or `plaintext`). */
export function bindingOf(ws: WebSocket): string {
  return channelBinding((ws as unknown as { _socket?: Socket })._socket);
}

export interface HelloFields {
  did: string;
  nonce: string;
}

/** The transcript of one connection, as `role` signs it. */
export function transcriptOf(
  role: HandshakeRole,
  initiator: HelloFields,
  responder: HelloFields,
  binding: string,
  version = WIRE_VERSION,
): AuthTranscript {
  return {
    version,
    role,
    initiator: { did: initiator.did, nonce: initiator.nonce },
    responder: { did: responder.did, nonce: responder.nonce },
    binding,
  };
}

export function signTranscript(key: KeyPair, t: AuthTranscript): string {
  return sigToString(sign(key, authBytes(t)));
}
