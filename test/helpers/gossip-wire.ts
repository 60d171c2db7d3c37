/**
 * The gossip handshake as a raw test client speaks it (no project protocol
 * code, only the transcript bytes of runtime/crypto/auth.ts): the URL and
 * socket options of a TLS 1.3 link, the connection's channel binding, and
 * the signatures of either role.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { sigToString } from '../../runtime/domain/codec.js';
import { channelBinding } from '../../actors/gossip/tls.js';
import { authBytes, sign } from '../../runtime/crypto/index.js';
import type { AuthTranscript, HandshakeRole, KeyPair } from '../../runtime/crypto/index.js';

/** The protocol version the node speaks. */
export const WIRE_VERSION = 3;

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

/** An authenticated raw link to a node: the honest handshake done, frames collected. */
export class RawSession {
  readonly frames: Array<Record<string, unknown> & { t: string }> = [];
  close?: { code: number; reason: string };
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => {
      try {
        this.frames.push(JSON.parse(String(d)) as Record<string, unknown> & { t: string });
      } catch {
        // not a frame
      }
    });
    ws.on('error', () => {});
    this.closed = new Promise((resolve) =>
      ws.once('close', (code, reason) => {
        this.close = { code, reason: reason.toString() };
        resolve(this.close);
      }),
    );
  }

  /** Connect (from `localAddress` if given) and authenticate as `key`; resolves once admitted or closed. */
  static async open(
    port: number,
    key: KeyPair,
    opts: { localAddress?: string; hello?: Record<string, unknown> } = {},
  ): Promise<RawSession> {
    const { WebSocket: Ws } = await import('ws');
    const ws = new Ws(rawUrl(port), {
      perMessageDeflate: false,
      maxPayload: 64 * 1024 * 1024,
      ...RAW_TLS,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
    });
    const s = new RawSession(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const hello = await s.take('hello');
    const nonce = randomBytes(32).toString('base64url');
    ws.send(
      JSON.stringify({ t: 'hello', versions: [WIRE_VERSION], did: key.did, nonce, ...opts.hello }),
    );
    const t = transcriptOf(
      'initiator',
      { did: key.did, nonce },
      { did: hello.did as string, nonce: hello.nonce as string },
      bindingOf(ws),
    );
    ws.send(JSON.stringify({ t: 'auth', version: WIRE_VERSION, sig: signTranscript(key, t) }));
    // Admitted (a vector), answered on an invite (joinRes), or refused (closed).
    const admitted = opts.hello?.invite ? s.peek('joinRes') : s.take('vv');
    await Promise.race([admitted.catch(() => undefined), s.closed]);
    return s;
  }

  async take(t: string, ms = 3000): Promise<Record<string, unknown> & { t: string }> {
    const end = Date.now() + ms;
    for (;;) {
      const i = this.frames.findIndex((f) => f.t === t);
      if (i >= 0) return this.frames.splice(i, 1)[0]!;
      if (this.close) throw new Error(`closed (${this.close.code}) awaiting ${t}`);
      if (Date.now() > end) throw new Error(`no ${t} within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Wait until a frame of type `t` has arrived, leaving it to `take`. */
  async peek(t: string, ms = 3000): Promise<void> {
    const end = Date.now() + ms;
    while (!this.frames.some((f) => f.t === t)) {
      if (this.close) throw new Error(`closed (${this.close.code}) awaiting ${t}`);
      if (Date.now() > end) throw new Error(`no ${t} within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  send(text: string): void {
    this.ws.send(text);
  }
}
