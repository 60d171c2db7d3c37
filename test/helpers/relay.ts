/**
 * Attackers on the gossip handshake, written for the tests with raw `ws`
 * (none of the node's protocol code): a reflector, which opens a connection
 * to each of two nodes and hands each one the other's hello and proof, and a
 * man-in-the-middle relay, which accepts a node's connection (terminating
 * its TLS with a certificate of its own), dials the real target, and
 * shuttles every message both ways unchanged. Both use their own source
 * address where given, so a test can tell their connections from honest ones.
 */
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createHttpServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { ephemeralCertificate } from '../../actors/gossip/tls.js';
import { RAW_TLS, rawUrl } from './gossip-wire.js';

type Frame = Record<string, unknown> & { t: string };

/** After one side of a relayed link closes, the other is cut this much later. */
const CUT_AFTER_MS = 1000;

/** Received frames, kept from the moment the socket exists (the node speaks first). */
const inbox = new WeakMap<WebSocket, Frame[]>();
/** Close codes, recorded as they happen (a close can come before anyone waits for it). */
const closes = new WeakMap<WebSocket, Promise<number>>();

/** Open a raw client connection, from `localAddress` if given. */
function open(url: string, localAddress?: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      perMessageDeflate: false,
      ...RAW_TLS,
      ...(localAddress ? { localAddress } : {}),
    });
    const frames: Frame[] = [];
    inbox.set(ws, frames);
    ws.on('message', (d: Buffer) => {
      try {
        frames.push(JSON.parse(String(d)) as Frame);
      } catch {
        // not a frame
      }
    });
    ws.on('error', () => {});
    closes.set(ws, new Promise((r) => ws.once('close', (code) => r(code))));
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** The next frame of type `t` received on `ws` (taken out of its inbox). */
async function next(ws: WebSocket, t: string, ms = 3000): Promise<Frame> {
  const frames = inbox.get(ws)!;
  const end = Date.now() + ms;
  for (;;) {
    const i = frames.findIndex((f) => f.t === t);
    if (i >= 0) return frames.splice(i, 1)[0]!;
    if (ws.readyState === ws.CLOSED) throw new Error(`closed awaiting ${t}`);
    if (Date.now() > end) throw new Error(`no ${t} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** How the node closed `ws`, or -1 if it is still open after `ms`. */
const closeCode = (ws: WebSocket, ms = 3000): Promise<number> =>
  Promise.race([closes.get(ws)!, new Promise<number>((r) => setTimeout(() => r(-1), ms))]);

export interface ReflectionResult {
  /** How V closed the connection on which the attacker claimed N (and N the one claiming V). */
  codeAtV: number;
  codeAtN: number;
  /** Garbage frames the attacker managed to send as the other node after the handshake. */
  sentAsPeer: number;
}

/**
 * The reflection attack: connect to V and to N, read both hellos, send V a
 * hello with N's DID and nonce and N one with V's, then forward each node's
 * auth to the other. Then four garbage frames "as N" to V and "as V" to N
 * (what got an honest peer banned when the handshake was reflectable).
 */
export async function reflect(
  portV: number,
  portN: number,
  opts: { localAddress?: string; tls?: boolean } = {},
): Promise<ReflectionResult> {
  const tls = opts.tls ?? true;
  const toV = await open(rawUrl(portV, '/gossip', '127.0.0.1', tls), opts.localAddress);
  const toN = await open(rawUrl(portN, '/gossip', '127.0.0.1', tls), opts.localAddress);
  try {
    const helloV = await next(toV, 'hello');
    const helloN = await next(toN, 'hello');
    const authV = next(toV, 'auth');
    const authN = next(toN, 'auth');
    toV.send(JSON.stringify({ ...helloN }));
    toN.send(JSON.stringify({ ...helloV }));
    const [fromV, fromN] = await Promise.allSettled([authV, authN]);
    // Each node signed for the attacker's connection: forward it to the other.
    if (fromN.status === 'fulfilled' && toV.readyState === toV.OPEN) {
      toV.send(JSON.stringify(fromN.value));
    }
    if (fromV.status === 'fulfilled' && toN.readyState === toN.OPEN) {
      toN.send(JSON.stringify(fromV.value));
    }
    await new Promise((r) => setTimeout(r, 300));
    let sentAsPeer = 0;
    for (let i = 0; i < 4; i++) {
      for (const ws of [toV, toN]) {
        if (ws.readyState !== ws.OPEN) continue;
        ws.send('garbage, as the other node');
        sentAsPeer++;
      }
    }
    const [codeAtV, codeAtN] = await Promise.all([closeCode(toV), closeCode(toN)]);
    return { codeAtV, codeAtN, sentAsPeer };
  } finally {
    toV.terminate();
    toN.terminate();
  }
}

export interface RelayedLink {
  /** How the node that dialed the relay closed its side, and how the target closed the other. */
  fromDialer?: number;
  fromTarget?: number;
  /** Messages shuttled each way. */
  toTarget: number;
  toDialer: number;
}

/**
 * A man in the middle: listens (TLS with its own certificate, or plain),
 * and for each connection dials `target` from `localAddress`, forwarding
 * every message both ways unchanged, the handshake included.
 */
export class Relay {
  readonly links: RelayedLink[] = [];
  private readonly sockets = new Set<WebSocket>();

  private constructor(
    private readonly server: Server,
    private readonly wss: WebSocketServer,
    readonly port: number,
  ) {}

  static async start(opts: {
    host: string;
    port?: number;
    target: string;
    localAddress?: string;
    tls?: boolean;
  }): Promise<Relay> {
    const server =
      (opts.tls ?? true)
        ? createHttpsServer({ ...(await ephemeralCertificate()), minVersion: 'TLSv1.3' })
        : createHttpServer();
    const wss = new WebSocketServer({ server, perMessageDeflate: false });
    await new Promise<void>((resolve) => server.listen(opts.port ?? 0, opts.host, resolve));
    const relay = new Relay(server, wss, (server.address() as AddressInfo).port);
    wss.on('connection', (dialer) => void relay.shuttle(dialer, opts.target, opts.localAddress));
    return relay;
  }

  private async shuttle(dialer: WebSocket, target: string, localAddress?: string): Promise<void> {
    const link: RelayedLink = { toTarget: 0, toDialer: 0 };
    this.links.push(link);
    this.sockets.add(dialer);
    const early: Buffer[] = [];
    const hold = (d: Buffer) => early.push(d);
    dialer.on('message', hold);
    dialer.on('close', (code) => (link.fromDialer = code));
    let upstream: WebSocket;
    try {
      upstream = await open(target, localAddress);
    } catch {
      dialer.terminate();
      return;
    }
    this.sockets.add(upstream);
    // Each side is left a moment to give its own verdict before the other is cut.
    upstream.on('close', (code) => {
      link.fromTarget = code;
      setTimeout(() => dialer.terminate(), CUT_AFTER_MS);
    });
    dialer.on('close', () => setTimeout(() => upstream.terminate(), CUT_AFTER_MS));
    upstream.on('message', (d: Buffer) => {
      link.toDialer++;
      if (dialer.readyState === dialer.OPEN) dialer.send(String(d));
    });
    dialer.off('message', hold);
    const forward = (d: Buffer) => {
      link.toTarget++;
      if (upstream.readyState === upstream.OPEN) upstream.send(String(d));
    };
    for (const d of early) forward(d);
    dialer.on('message', forward);
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.terminate();
    this.wss.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
