/**
 * One WebSocket connection to another node: the handshake, the per-frame
 * limits (rate, size, idle) and sending with backpressure. What the frames
 * mean is the gossiper's business (mesh.ts); a Peer only hands it frames
 * that arrived after a verified handshake.
 *
 * Handshake (protocol version 2). The side that dialed is the initiator:
 *   → hello {versions, did, nonce}      ← hello    (each sent on open)
 *   → auth  {version, sig}              ← auth     (each after the other's hello)
 * Each side signs the transcript of runtime/crypto/auth.ts: its own role,
 * both DIDs and both nonces in role order, the version and the TLS
 * exporter of this connection. Our hello (with our fresh nonce) is sent
 * before anything is signed, so every signature we make covers a nonce of
 * ours on this connection; the role stops a proof being reflected back
 * across two connections an attacker opened; the exporter stops one being
 * relayed through a man in the middle. Only after our auth is sent and
 * theirs verified does the gossiper see the peer (`admit`).
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { authBytes, publicKeyFromDid, verify } from '../../runtime/crypto/index.js';
import type { AuthTranscript, HandshakeRole } from '../../runtime/crypto/index.js';
import {
  CLOSE,
  MeshError,
  closeCodeOf,
  handshakeFailed,
  protocolViolation,
  tooLarge,
} from '../../runtime/errors.js';
import { sigFromString } from '../../runtime/domain/codec.js';
import { PROTOCOL_VERSIONS, decodeFrame, encodeFrame } from './frames.js';
import type { Frame, FrameOf } from './frames.js';
import { FULL_SCORE, take } from './scoring.js';
import { channelBinding } from './tls.js';
import type { Bucket, Offence, ScoreState } from './scoring.js';
import { SerialLane } from '../../runtime/serial-lane.js';

/** Close codes: catalogued beside the error codes (runtime/errors.ts CLOSE_CODES). */
export { CLOSE };

/** A peer that ignores our close frame is cut off after this long. */
const CLOSE_GRACE_MS = 1000;
/** How often a blocked sender re-checks the socket's buffer. */
const DRAIN_POLL_MS = 5;

export interface PeerLimits {
  maxEntriesPerFrame: number;
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
  rateFrames: number;
  burstFrames: number;
  /** Above this many bytes queued in the socket, senders wait and droppable frames are skipped. */
  maxBufferedBytes: number;
  /** One frame's limit: with 2 x maxBufferedBytes, the peer's send budget. */
  maxFrameBytes: number;
}

/**
 * Frames that only advertise heads: skipped for a peer that is behind on
 * reading (the next anti-entropy round sends a fresh one), so a peer that
 * reads nothing cannot make its queue of them grow.
 */
const DROPPABLE = new Set(['vv', 'have']);

/** What a Peer needs from the gossiper. */
export interface PeerHost {
  readonly did: string;
  /** The mesh this node belongs to (sent in our hello), or null. */
  readonly meshId: string | null;
  /** The invite token to present on a dial to `url` (a join), if any. */
  inviteFor(url: string | undefined): string | undefined;
  signAuth(t: AuthTranscript): Promise<string>;
  /** After a verified handshake: null to admit, or why not. */
  admit(peer: Peer): MeshError | null;
  peerOnOpen(peer: Peer): void;
  peerOnFrame(peer: Peer, frame: Frame): void;
  peerOnOffence(peer: Peer, offence: Offence, err: Error): void;
  peerOnClose(peer: Peer, code: number, reason: string): void;
}

export type PeerState = 'handshake' | 'open' | 'closed';

let nextConnection = 1;

export class Peer {
  readonly connection = nextConnection++;
  readonly connectedAt = Date.now();
  state: PeerState = 'handshake';
  did: string | undefined;
  version = 0;
  lastSeen = Date.now();
  score: ScoreState = { score: FULL_SCORE, at: Date.now() };
  framesIn = 0;
  framesOut = 0;
  /** vv/have frames not sent because the peer was behind on reading. */
  framesSkipped = 0;
  bytesIn = 0;
  bytesOut = 0;
  closeCode = 0;
  closeReason = '';
  /** The mesh id the peer's hello named, if any. */
  theirMesh: string | undefined;
  /** The invite token the peer's hello presented, if any (it is joining through us). */
  theirInvite: string | undefined;
  /** Admitted on an invite, not redeemed yet: its frames wait until the redemption answers. */
  joining = false;
  /** Sync state, owned by the gossiper. */
  readonly heads = new Map<string, number>();
  readonly ahead = new Set<string>();
  /** Our wants to this peer by author: sent at `sent`; `answered` once its entries are queued. */
  readonly openWants = new Map<
    string,
    { from: number; to: number; sent?: number; answered?: boolean }
  >();
  readonly serving: Array<FrameOf<'want'>> = [];
  vvComplete = false;
  /** Ingests of this peer's answers run one at a time, in arrival order. */
  readonly lane = new SerialLane();

  /** The socket's far and near IPs (v4-mapped v6 unwrapped): the grant flow's "observed source IP". */
  readonly remoteIp: string;
  readonly localIp: string;

  /** The dialer is the initiator: the role each side signs. */
  readonly role: HandshakeRole;
  /** This connection's TLS exporter (or `plaintext`): what both proofs are bound to. */
  readonly binding: string;
  private readonly nonce = randomBytes(32).toString('base64url');
  private theirHello: FrameOf<'hello'> | undefined;
  private authSent = false;
  private authVerified = false;
  private bucket: Bucket;
  private tooBig = false;
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly ws: WebSocket,
    readonly direction: 'in' | 'out',
    readonly address: string,
    readonly url: string | undefined,
    private readonly host: PeerHost,
    private readonly limits: PeerLimits,
  ) {
    this.bucket = { tokens: limits.burstFrames, at: Date.now() };
    const socket = (ws as unknown as { _socket?: Socket })._socket;
    this.role = direction === 'out' ? 'initiator' : 'responder';
    this.binding = channelBinding(socket);
    this.remoteIp = unmapped(socket?.remoteAddress ?? '');
    this.localIp = unmapped(socket?.localAddress ?? '');
    ws.on('message', (data, isBinary) => this.socketOnMessage(data as Buffer, isBinary));
    ws.on('pong', () => (this.lastSeen = Date.now()));
    ws.on('close', (code, reason) => this.socketOnClose(code, reason.toString()));
    // 'close' follows every error; the reason is logged there. A message over
    // maxPayload is ws closing with 1009 itself, which its 'close' reports as
    // 1006: remember it, so the log and the peer's score say what happened.
    ws.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.tooBig = true;
    });
    this.timers.push(
      setTimeout(() => {
        if (this.state === 'handshake') this.close(CLOSE.handshakeTimeout, 'handshake timeout');
      }, limits.handshakeTimeoutMs),
    );
    const invite = direction === 'out' ? host.inviteFor(url) : undefined;
    this.send({
      t: 'hello',
      versions: [...PROTOCOL_VERSIONS],
      did: host.did,
      nonce: this.nonce,
      ...(host.meshId ? { mesh: host.meshId } : {}),
      ...(invite ? { invite } : {}),
    });
  }

  /**
   * Send a frame; false if the socket is no longer open. Whatever the frame,
   * a peer whose send queue would pass its budget (2 x maxBufferedBytes +
   * one frame) is cut with 4011: its memory is bounded by the budget.
   */
  send(frame: Frame): boolean {
    if (this.ws.readyState !== this.ws.OPEN) return false;
    const queued = this.ws.bufferedAmount;
    if (DROPPABLE.has(frame.t) && queued > this.limits.maxBufferedBytes) {
      this.framesSkipped++;
      return true;
    }
    const text = encodeFrame(frame);
    if (queued + text.length > 2 * this.limits.maxBufferedBytes + this.limits.maxFrameBytes) {
      this.close(CLOSE.slow, 'peer does not read: send budget exceeded');
      return false;
    }
    this.framesOut++;
    this.bytesOut += text.length;
    this.ws.send(text);
    return true;
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  /**
   * Resolve once the socket's queue is under the limit, so a slow reader
   * makes us wait instead of growing our memory. A peer that does not read
   * for a whole idle timeout is dropped.
   */
  async drained(): Promise<boolean> {
    const since = Date.now();
    while (this.ws.bufferedAmount > this.limits.maxBufferedBytes) {
      if (this.state === 'closed') return false;
      if (Date.now() - since > this.limits.idleTimeoutMs) {
        this.close(CLOSE.slow, 'peer does not read: send buffer full');
        return false;
      }
      await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
    }
    return this.state !== 'closed';
  }

  close(code: number, reason: string): void {
    if (this.state === 'closed') return;
    this.closeCode = code;
    this.closeReason = reason;
    this.finish();
    try {
      this.ws.close(code, reason.slice(0, 120));
    } catch {
      this.ws.terminate();
    }
    setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  private socketOnMessage(data: Buffer, isBinary: boolean): void {
    if (this.state === 'closed') return;
    const now = Date.now();
    this.lastSeen = now;
    this.framesIn++;
    this.bytesIn += data.length;
    const taken = take(this.bucket, 1, this.limits.rateFrames, this.limits.burstFrames, now);
    this.bucket = taken.bucket;
    if (!taken.ok) {
      if (this.state !== 'open') return this.close(CLOSE.badFrame, 'flood during handshake');
      this.host.peerOnOffence(this, 'flood', protocolViolation('frame over the rate limit'));
      return;
    }
    let frame: Frame;
    try {
      frame = decodeFrame(data, isBinary, this.limits.maxEntriesPerFrame);
    } catch (err) {
      if (this.state !== 'open') return this.close(CLOSE.badFrame, (err as Error).message);
      this.host.peerOnOffence(this, 'malformed', err as Error);
      return;
    }
    if (this.state === 'open') {
      if (frame.t === 'hello' || frame.t === 'auth') {
        this.host.peerOnOffence(this, 'protocol', protocolViolation(`${frame.t} after handshake`));
        return;
      }
      this.host.peerOnFrame(this, frame);
      return;
    }
    try {
      this.handshakeOnFrame(frame);
    } catch (err) {
      const code =
        err instanceof MeshError && err.code === 'ERR_BAD_FRAME' ? CLOSE.badFrame : CLOSE.handshake;
      this.close(code, (err as Error).message);
    }
  }

  private handshakeOnFrame(frame: Frame): void {
    if (frame.t === 'hello') {
      if (this.theirHello) throw handshakeFailed('second hello');
      const version = Math.max(...frame.versions.filter((v) => PROTOCOL_VERSIONS.includes(v)));
      if (!Number.isFinite(version)) {
        return this.close(
          CLOSE.version,
          `no common protocol version (we speak ${PROTOCOL_VERSIONS.join(',')})`,
        );
      }
      if (frame.did === this.host.did) return this.close(CLOSE.self, 'connected to itself');
      this.theirHello = frame;
      this.theirMesh = frame.mesh;
      // Only a dialer joins: an invite in a responder's hello means nothing.
      if (this.direction === 'in') this.theirInvite = frame.invite;
      this.version = version;
      void this.sendAuth(frame);
      return;
    }
    if (frame.t === 'auth') {
      const hello = this.theirHello;
      if (!hello) throw handshakeFailed('auth before hello');
      if (this.authVerified) throw handshakeFailed('second auth');
      if (frame.version !== this.version) throw handshakeFailed('auth for another version');
      const bytes = authBytes(
        this.transcript(this.role === 'initiator' ? 'responder' : 'initiator', hello),
      );
      if (!verify(sigFromString(frame.sig), bytes, publicKeyFromDid(hello.did))) {
        throw handshakeFailed('handshake signature does not verify for that DID');
      }
      this.authVerified = true;
      this.did = hello.did;
      this.maybeOpen();
      return;
    }
    throw handshakeFailed(`${frame.t} before the handshake finished`);
  }

  private async sendAuth(hello: FrameOf<'hello'>): Promise<void> {
    let sig: string;
    try {
      sig = await this.host.signAuth(this.transcript(this.role, hello));
    } catch (err) {
      // Our side failed (journal restarting): not the peer's fault; it redials.
      return this.close(CLOSE.shutdown, `cannot sign the handshake: ${(err as Error).message}`);
    }
    if (this.state === 'closed') return;
    this.send({ t: 'auth', version: this.version, sig });
    this.authSent = true;
    this.maybeOpen();
  }

  /** This connection's transcript as `role` signs it. */
  private transcript(role: HandshakeRole, theirs: FrameOf<'hello'>): AuthTranscript {
    const ours = { did: this.host.did, nonce: this.nonce };
    const peer = { did: theirs.did, nonce: theirs.nonce };
    return {
      version: this.version,
      role,
      initiator: this.role === 'initiator' ? ours : peer,
      responder: this.role === 'initiator' ? peer : ours,
      binding: this.binding,
    };
  }

  private maybeOpen(): void {
    if (!this.authSent || !this.authVerified || this.state !== 'handshake') return;
    const refusal = this.host.admit(this);
    if (refusal) return this.close(closeCodeOf(refusal), refusal.message);
    this.state = 'open';
    const every = Math.max(50, Math.floor(this.limits.idleTimeoutMs / 3));
    this.timers.push(
      setInterval(() => {
        if (Date.now() - this.lastSeen > this.limits.idleTimeoutMs) {
          this.close(CLOSE.idle, 'idle timeout');
        } else if (this.ws.readyState === this.ws.OPEN) {
          this.ws.ping();
        }
      }, every),
    );
    this.host.peerOnOpen(this);
  }

  private socketOnClose(code: number, reason: string): void {
    if (this.state === 'closed') return;
    if (this.tooBig) {
      code = CLOSE.tooBig;
      reason = 'frame over max_frame_bytes';
      if (this.state === 'open') this.host.peerOnOffence(this, 'malformed', tooLarge(reason));
    }
    this.closeCode = code;
    this.closeReason = reason || 'closed by peer';
    this.finish();
  }

  /** Enter 'closed' exactly once and tell the gossiper. */
  private finish(): void {
    this.state = 'closed';
    for (const t of this.timers) clearTimeout(t);
    this.host.peerOnClose(this, this.closeCode, this.closeReason);
  }
}

/** `::ffff:10.0.0.1` is 10.0.0.1. */
function unmapped(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}
