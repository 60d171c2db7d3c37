/**
 * TLS 1.3 for gossip links: the certificate, the pinned settings on both
 * ends, the channel binding the handshake signs, and the refusal of a
 * client that does not speak TLS on a TLS port.
 *
 * Why self-signed, ephemeral and unverified: identity on the mesh is the
 * did:key each side proves in the gossip handshake, not a name a CA vouches
 * for. TLS here gives confidentiality and integrity, and its exporter ties
 * the did:key proof to this one TLS session (runtime/crypto/auth.ts), which
 * is what defeats a relay: a man in the middle holds two TLS sessions with
 * two different exporters, so neither side's proof verifies on the other.
 * Nothing is gained by checking the certificate, and persisting its key
 * would be one more secret on disk for no benefit, so a fresh P-256 key and
 * certificate are made at each start (~25-45 ms here).
 */
import type { TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import selfsigned from 'selfsigned';
import { PLAINTEXT_BINDING } from '../../runtime/crypto/index.js';

/** RFC 9266 `tls-exporter` channel binding: label, no context, 32 bytes. */
const EXPORTER_LABEL = 'EXPORTER-Channel-Binding';
const EXPORTER_BYTES = 32;
/** The first byte of every TLS record carrying a handshake (ClientHello). */
const TLS_HANDSHAKE_RECORD = 0x16;
/** The certificate is thrown away at exit; it need only outlive the process. */
const CERT_DAYS = 3650;

export interface TlsMaterial {
  key: string;
  cert: string;
}

/**
 * TLS 1.3 only, on both ends. TLS 1.3 has no renegotiation and no
 * compression (RFC 8446 §4.1.2, compression_methods must be [0]), so pinning
 * the version pins those too.
 */
export const TLS_PINNED = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' } as const;

/** A fresh self-signed P-256 certificate for this process. */
export async function ephemeralCertificate(): Promise<TlsMaterial> {
  const notBeforeDate = new Date(Date.now() - 60_000);
  const notAfterDate = new Date(notBeforeDate.getTime() + CERT_DAYS * 86_400_000);
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'meshnode' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
  });
  return { key: pems.private, cert: pems.cert };
}

/**
 * What the client passes to `new WebSocket(wss://…)`: TLS 1.3, and no
 * certificate check (see the header: the did:key handshake authenticates).
 */
export const CLIENT_TLS = { ...TLS_PINNED, rejectUnauthorized: false } as const;

/**
 * The channel binding of a connection's socket: its TLS exporter as
 * base64url, or PLAINTEXT_BINDING for a plain TCP socket (only ever used
 * where the operator set gossip.insecure_plaintext).
 */
export function channelBinding(socket: Socket | TLSSocket | undefined): string {
  const tls = socket as TLSSocket | undefined;
  if (!tls || typeof tls.exportKeyingMaterial !== 'function' || !tls.encrypted) {
    return PLAINTEXT_BINDING;
  }
  return tls
    .exportKeyingMaterial(EXPORTER_BYTES, EXPORTER_LABEL, Buffer.alloc(0))
    .toString('base64url');
}

/**
 * Look at a new connection's first bytes: a TLS ClientHello goes on to
 * `onTls` (the bytes put back), anything else gets a plain-text HTTP 400
 * saying that this port speaks TLS, so an operator pointing a ws:// client
 * or curl at it reads why instead of a reset.
 */
export function sniffTls(socket: Socket, onTls: (socket: Socket) => void): void {
  socket.once('data', (chunk: Buffer) => {
    socket.pause();
    socket.unshift(chunk);
    // Paused with the bytes buffered: the TLS layer reads a socket's buffered
    // bytes first when it wraps it (a resume here would spill them as events).
    if (chunk[0] === TLS_HANDSHAKE_RECORD) return onTls(socket);
    const body = 'meshnode gossip speaks TLS 1.3 only: use wss://\n';
    socket.end(
      `HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      () => socket.destroy(),
    );
  });
}
