/**
 * The grant flow over the gossip links (docs/design.md, the grant flow):
 * the consumer side asks a provider for a nonce and sends its signed
 * request, waiting for each answer on the same authenticated link; the
 * provider side hands both steps to the authorizer (GrantPort) and sends
 * its answers back. Frames are in frames.ts (grantHello, grantNonce,
 * grantReq, grantRes); an answer nobody asked for costs the peer.
 */
import { CLOSE, E } from '../../runtime/errors.js';
import type { MeshError } from '../../runtime/errors.js';
import type { GrantRequest, GrantResult } from '../../runtime/protocol/grants.js';
import type { Dialer } from './dialer.js';
import type { Frame, FrameOf } from './frames.js';
import type { Peer } from './peer.js';
import type { Offence } from './scoring.js';

/** How long a consumer waits for each step of the grant flow. */
const GRANT_STEP_MS = 10_000;

/** The grant authorizer, as the gossiper uses it (provider side). */
export interface GrantPort {
  challenge(peerDid: string): Promise<{ nonce: string; expiresAt: number }>;
  authorize(
    request: GrantRequest,
    seen: { peerDid: string; sourceIp: string; localIp: string; receivedAt: number },
  ): Promise<GrantResult>;
}

/** What the relay needs from the mesh. */
export interface RelayHost {
  readonly byDid: ReadonlyMap<string, Peer>;
  readonly dialer: Pick<Dialer, 'add'>;
  peerOnOffence(peer: Peer, offence: Offence, err: Error): void;
}

export class GrantRelay {
  grants: GrantPort | undefined;
  /** The consumer side's open exchanges, by request id. */
  private readonly waits = new Map<
    string,
    { peer: Peer; resolve: (f: Frame) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();
  private nextRid = 1;

  constructor(private readonly host: RelayHost) {}

  /** A link closed: exchanges waiting on it fail now. */
  peerOnClose(peer: Peer, code: number): void {
    for (const [rid, w] of this.waits) {
      if (w.peer !== peer) continue;
      this.waits.delete(rid);
      clearTimeout(w.timer);
      // Closed as a duplicate: both ends dialed at once and the other link
      // stays. Coded apart, so the consumer moves its exchange to that one.
      w.reject(
        code === CLOSE.duplicate
          ? E.ERR_PEER_DUPLICATE('the link to the provider was replaced by another one (4009)')
          : E.ERR_PROTOCOL(`the link to the provider closed (${code})`),
      );
    }
  }

  /**
   * Consumer side, step 1: a nonce from `provider`, over the authenticated
   * link to it (dialing `url` first if there is none).
   */
  async grantNonce(
    provider: string,
    url: string | undefined,
  ): Promise<{ rid: string; nonce: string; expiresAt: number }> {
    const peer = await this.linkTo(provider, url);
    const rid = `g${this.nextRid++}`;
    const f = (await this.grantExchange(peer, { t: 'grantHello', rid })) as FrameOf<'grantNonce'>;
    if (f.t !== 'grantNonce') throw E.ERR_PROTOCOL('provider answered out of turn');
    return { rid, nonce: f.nonce, expiresAt: f.expiresAt };
  }

  /** Consumer side, step 2: the signed request; resolves with the provider's decision. */
  async grantRequest(provider: string, rid: string, request: GrantRequest): Promise<GrantResult> {
    const peer = this.host.byDid.get(provider);
    if (!peer || peer.state !== 'open') {
      throw E.ERR_PROTOCOL('the link to the provider closed during the request');
    }
    const f = (await this.grantExchange(peer, {
      t: 'grantReq',
      rid,
      ...request,
    })) as FrameOf<'grantRes'>;
    if (f.t !== 'grantRes') throw E.ERR_PROTOCOL('provider answered out of turn');
    const { t: _t, rid: _rid, ...result } = f;
    return result;
  }

  private grantExchange(peer: Peer, frame: Frame): Promise<Frame> {
    const rid = (frame as { rid: string }).rid;
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waits.delete(rid);
        reject(E.ERR_TIMEOUT(`provider did not answer ${frame.t} in time`));
      }, GRANT_STEP_MS);
      this.waits.set(rid, { peer, resolve, reject, timer });
      if (!peer.send(frame)) {
        clearTimeout(timer);
        this.waits.delete(rid);
        reject(E.ERR_PROTOCOL('the link to the provider is closed'));
      }
    });
  }

  /** An open link to `did`: the existing one, or a dial of `url` awaited. */
  private async linkTo(did: string, url: string | undefined): Promise<Peer> {
    const open = this.host.byDid.get(did);
    if (open?.state === 'open') return open;
    if (!url) throw E.ERR_PROTOCOL(`no link to ${did} and no endpoint to dial`);
    this.host.dialer.add(url, 'discovered', did);
    const end = Date.now() + GRANT_STEP_MS;
    while (Date.now() < end) {
      const p = this.host.byDid.get(did);
      if (p?.state === 'open') return p;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw E.ERR_TIMEOUT(`could not reach ${did} at ${url}`);
  }

  peerOnGrantAnswer(peer: Peer, frame: FrameOf<'grantNonce'> | FrameOf<'grantRes'>): void {
    const wait = this.waits.get(frame.rid);
    if (!wait || wait.peer !== peer) {
      this.host.peerOnOffence(peer, 'protocol', E.ERR_PROTOCOL(`unsolicited ${frame.t}`));
      return;
    }
    this.waits.delete(frame.rid);
    clearTimeout(wait.timer);
    wait.resolve(frame);
  }

  /** Provider side, step 1: a fresh single-use nonce from the authorizer. */
  async peerOnGrantHello(peer: Peer, frame: FrameOf<'grantHello'>): Promise<void> {
    if (!this.grants)
      return void peer.send({
        t: 'grantRes',
        rid: frame.rid,
        ok: false,
        code: 'ERR_UNAVAILABLE',
        reason: 'grants are not served here',
      });
    try {
      const { nonce, expiresAt } = await this.grants.challenge(peer.did!);
      peer.send({ t: 'grantNonce', rid: frame.rid, nonce, expiresAt });
    } catch (err) {
      peer.send({
        t: 'grantRes',
        rid: frame.rid,
        ok: false,
        code: (err as MeshError).code ?? 'ERR_HANDLER',
        reason: 'no nonce',
      });
    }
  }

  /** Provider side, step 2: the authorizer decides; the answer goes back on the same link. */
  async peerOnGrantReq(peer: Peer, frame: FrameOf<'grantReq'>): Promise<void> {
    // When the request arrived, on a clock all threads share: the authorizer
    // measures "request received → IP in the kernel set" from here.
    const receivedAt = performance.timeOrigin + performance.now();
    const { t: _t, rid, ...request } = frame;
    let result: GrantResult;
    try {
      if (!this.grants) throw E.ERR_UNAVAILABLE('grants are not served here');
      result = await this.grants.authorize(request, {
        peerDid: peer.did!,
        sourceIp: peer.remoteIp,
        localIp: peer.localIp,
        receivedAt,
      });
    } catch (err) {
      result = {
        ok: false,
        code: (err as MeshError).code ?? 'ERR_HANDLER',
        reason: 'the authorizer failed',
      };
    }
    peer.send({ t: 'grantRes', rid, ...result });
  }
}
