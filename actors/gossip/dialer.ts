/**
 * The gossiper's outbound side: dial targets (configured in gossip.peers,
 * or discovered from node records), their backoff, and one shared dial
 * rate so that a flood of targets cannot become a flood of connections.
 * Which records are dialed at all is policy.ts (recordsToDial); this file
 * only keeps the targets and opens the sockets.
 */
import { WebSocket } from 'ws';
import { backoffDelay, take } from './scoring.js';
import type { Bucket } from './scoring.js';
import { CLIENT_TLS } from './tls.js';

/** A link that held this long starts its backoff afresh when it ends. */
export const STABLE_LINK_MS = 10_000;

export interface DialTarget {
  url: string;
  did?: string;
  /** For a discovered target: the author of the node record that named it. */
  author?: string;
  attempt: number;
  timer?: NodeJS.Timeout;
  socket?: WebSocket;
  /**
   * A link from this target exists (from the socket's open to its close):
   * it is not dialed again meanwhile. Without it, a redial tick that fell
   * between the socket opening and the handshake proving the DID opened a
   * second link, and the duplicate rule closed one of them — the one a
   * join's answer was on, say.
   */
  linked?: boolean;
  /** How its last link ended (close code and reason): why a target keeps failing, for `peers`. */
  lastClose?: { code: number; reason: string; at: number };
  /** config: gossip.peers; discovered: a node record; join: the inviter a join dialed (trusted like config). */
  source: 'config' | 'discovered' | 'join';
}

export interface DialerOptions {
  maxFrameBytes: number;
  handshakeTimeoutMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** New outbound connections a second, all targets together. */
  dialRatePerS: number;
  /** How many targets are configured (they all get their first dial at once). */
  configured: number;
}

/** What the dialer needs from the mesh. */
export interface DialerHost {
  readonly did: string;
  readonly stopped: boolean;
  /** Whether `did` already has an open link (a target known to be it is not dialed). */
  isLinked(did: string): boolean;
  /** A dial that opened: the mesh makes it a peer. */
  dialerOnSocket(ws: WebSocket, url: string): void;
}

export class Dialer {
  readonly targets = new Map<string, DialTarget>();
  /** Discovered URLs the operator dropped (`undial`): not taken from records again. */
  readonly dropped = new Set<string>();
  /** Shared by every dial. */
  private bucket: Bucket;

  constructor(
    private readonly host: DialerHost,
    private readonly options: DialerOptions,
  ) {
    // Configured peers all get their first dial at once.
    this.bucket = { tokens: this.burst(), at: Date.now() };
  }

  /** Add a target and dial it (a held one is dialed now if it is idle). */
  add(url: string, source: DialTarget['source'], did?: string): DialTarget {
    const held = this.targets.get(url);
    if (held) {
      this.dial(held);
      return held;
    }
    const d: DialTarget = {
      url,
      attempt: 0,
      source,
      ...(did ? { did } : {}),
      ...(did && source === 'discovered' ? { author: did } : {}),
    };
    this.targets.set(url, d);
    this.dial(d);
    return d;
  }

  /** Dial every target that is neither connecting nor waiting out a backoff. */
  redialIdle(): void {
    for (const d of this.targets.values()) if (!d.socket && !d.timer) this.dial(d);
  }

  /** Targets not linked now (connecting or waiting out a backoff). */
  pendingCount(): number {
    let n = 0;
    for (const d of this.targets.values()) if (!d.linked) n++;
    return n;
  }

  /** How many discovered targets are held (max_dial_targets bounds them). */
  discoveredCount(): number {
    let n = 0;
    for (const d of this.targets.values()) if (d.source === 'discovered') n++;
    return n;
  }

  /**
   * The operator drops a target: a discovered one is forgotten (its
   * endpoint not taken again from its record until a restart); a configured
   * one cannot be (edit the config).
   */
  drop(url: string): { dropped: boolean; reason?: string } {
    const d = this.targets.get(url);
    if (!d) return { dropped: false, reason: 'no such dial target' };
    if (d.source === 'config') return { dropped: false, reason: 'configured in gossip.peers' };
    clearTimeout(d.timer);
    d.socket?.terminate();
    this.targets.delete(url);
    this.dropped.add(url);
    return { dropped: true };
  }

  /** Forget a target without remembering it as dropped (a join that failed). */
  forget(url: string): void {
    const d = this.targets.get(url);
    if (!d) return;
    clearTimeout(d.timer);
    d.socket?.terminate();
    this.targets.delete(url);
  }

  /** A link from target `url` ended: what the handshake proved is kept, and it is redialed. */
  linkOnClose(
    url: string,
    did: string | undefined,
    connectedAt: number,
    close?: { code: number; reason: string },
  ): void {
    const d = this.targets.get(url);
    if (d) d.linked = false;
    if (d && close) d.lastClose = { ...close, at: Date.now() };
    // The handshake proved who is behind this URL even if the link was then
    // refused (a duplicate of one the peer dialed): dial() skips a target
    // that is already connected, instead of redialing it forever.
    if (d && did) d.did = did;
    // A link that held for a while starts its backoff afresh; one that is
    // refused right after the handshake (ban, allowlist) keeps backing off.
    if (d && Date.now() - connectedAt > STABLE_LINK_MS) d.attempt = 0;
    this.scheduleRedial(url);
  }

  stop(): void {
    for (const d of this.targets.values()) {
      clearTimeout(d.timer);
      d.socket?.terminate();
    }
  }

  describe(): Array<{
    url: string;
    did: string | null;
    attempt: number;
    source: string;
    author: string | null;
    lastClose: { code: number; reason: string; at: number } | null;
  }> {
    return [...this.targets.values()].map((d) => ({
      url: d.url,
      did: d.did ?? null,
      attempt: d.attempt,
      source: d.source,
      author: d.author ?? null,
      lastClose: d.lastClose ?? null,
    }));
  }

  /** Every configured peer may be dialed at once; beyond that the rate applies. */
  private burst(): number {
    return Math.max(this.options.configured, this.options.dialRatePerS, 1);
  }

  private dial(d: DialTarget): void {
    if (this.host.stopped || d.socket || d.timer || d.linked) return;
    if (d.did && (d.did === this.host.did || this.host.isLinked(d.did))) return;
    const taken = take(this.bucket, 1, this.options.dialRatePerS, this.burst(), Date.now());
    this.bucket = taken.bucket;
    if (!taken.ok) {
      // Over the dial rate: try again when a token is due, without growing the backoff.
      d.timer = setTimeout(
        () => {
          d.timer = undefined;
          this.dial(d);
        },
        Math.ceil(1000 / this.options.dialRatePerS),
      );
      d.timer.unref();
      return;
    }
    const ws = new WebSocket(d.url, {
      maxPayload: this.options.maxFrameBytes,
      handshakeTimeout: this.options.handshakeTimeoutMs,
      perMessageDeflate: false,
      ...CLIENT_TLS,
    });
    d.socket = ws;
    ws.on('error', () => {});
    ws.once('open', () => {
      d.socket = undefined;
      d.linked = true;
      this.host.dialerOnSocket(ws, d.url);
    });
    ws.once('close', () => {
      // Only a close before 'open' lands here with d.socket set: the dial failed.
      if (d.socket === ws) {
        d.socket = undefined;
        this.scheduleRedial(d.url);
      }
    });
  }

  private scheduleRedial(url: string): void {
    const d = this.targets.get(url);
    if (!d || this.host.stopped || d.timer) return;
    const delay = backoffDelay(d.attempt++, this.options.backoffBaseMs, this.options.backoffMaxMs);
    d.timer = setTimeout(() => {
      d.timer = undefined;
      this.dial(d);
    }, delay);
    d.timer.unref();
  }
}
