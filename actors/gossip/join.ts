/**
 * Joining a mesh with an invite token, both sides (docs/design.md §9):
 *
 *   joiner                                   inviter
 *   hello {…, invite}            ───────▶    admitted provisionally (`joining`)
 *   auth                         ◀──────▶    auth
 *                                            journal.redeemInvite(token, did)
 *                                ◀───────    joinRes {ok, mesh, member} | {ok:false, code}
 *   journal.setMesh(mesh)                    (a refusal closes with 4013)
 *
 * The joiner checks what it can before dialing (a forged, expired or
 * other-DID token is refused without a connection) and records the mesh only
 * after the inviter's `member` entry is committed: a failed join writes
 * nothing on either node. A provisional peer's frames are dropped until its
 * redemption answers, so an invite that fails leaks nothing of the journal.
 */
import { decodeInvite } from '../../runtime/domain/invite.js';
import { CLOSE_CODES, E, MeshError, isErrorCode } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/log.js';
import type { JoinResult } from '../../runtime/protocol/gossip.js';
import type { SignedInvite } from '../../runtime/protocol/journal.js';
import type { Dialer } from './dialer.js';
import type { FrameOf } from './frames.js';
import type { JournalPort } from './journal-port.js';
import { CLOSE } from './peer.js';
import type { Peer } from './peer.js';

/** What the join flow needs from the mesh. */
export interface JoinHost {
  readonly did: string;
  readonly meshId: string | null;
  readonly dialer: Dialer;
  /** The journal recorded the mesh: the host reloads the membership. */
  joinOnJoined(mesh: string): Promise<void>;
  /** The inviter redeemed us: it dropped our vector while we were provisional, so send it again. */
  joinOnAccepted(peer: Peer): void;
  /** A redeemed joiner: the link now opens to sync like any other. */
  joinOnRedeemed(peer: Peer): void;
}

/** How long a redeemed join waits for its own member entry to arrive by sync. */
const MEMBER_SYNC_MS = 10_000;

interface PendingJoin {
  url: string;
  token: string;
  /** The inviter answered: what happens to the link from now on is not the join's business. */
  answered?: boolean;
  resolve: (r: JoinResult) => void;
  reject: (err: MeshError) => void;
}

export class JoinFlow {
  /** Join dials in flight, by URL. */
  private readonly pending = new Map<string, PendingJoin>();

  constructor(
    private readonly host: JoinHost,
    private readonly journal: JournalPort,
    private readonly log: Logger,
  ) {}

  /** Inviter: sign an invite with this node's gossip endpoint in it (a joiner must dial something). */
  async invite(
    req: { rights?: string[]; expiresMs?: number; for?: string },
    endpoint: string | undefined,
  ): Promise<SignedInvite & { endpoints: string[] }> {
    if (endpoint === undefined) {
      throw E.ERR_BAD_REQUEST(
        'this node announces no gossip endpoint a joiner could dial: set gossip.advertise',
      );
    }
    const endpoints = [endpoint];
    return { ...(await this.journal.signInvite({ ...req, endpoints })), endpoints };
  }

  /** The token to present on a dial to `url`. */
  inviteFor(url: string | undefined): string | undefined {
    return url === undefined ? undefined : this.pending.get(url)?.token;
  }

  /** Joiner: redeem `token` at its inviter, trying each endpoint in turn within `timeoutMs`. */
  async join(token: string, timeoutMs: number): Promise<JoinResult> {
    const { payload } = decodeInvite(token);
    if (payload.expires <= Date.now()) {
      throw E.ERR_INVITE_EXPIRED(`the token expired at ${new Date(payload.expires).toISOString()}`);
    }
    if (payload.for !== undefined && payload.for !== this.host.did) {
      throw E.ERR_INVITE_DID(`the token is bound to ${payload.for}, not this node`);
    }
    if (payload.inviter === this.host.did)
      throw E.ERR_BAD_REQUEST('a node cannot join through itself');
    // The journal's word, not our last membership notice: it may be in flight.
    const held = (await this.journal.membership()).mesh;
    if (held !== null && held !== payload.mesh) {
      throw E.ERR_MESH_EXISTS(`this node already belongs to mesh ${held.slice(0, 12)}`);
    }
    if (payload.endpoints.length === 0)
      throw E.ERR_JOIN('the token names no endpoint of its inviter');
    const deadline = Date.now() + timeoutMs;
    let last: MeshError = E.ERR_JOIN('the inviter could not be reached');
    for (const url of payload.endpoints) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        return await this.attempt(url, token.trim(), left);
      } catch (err) {
        last = err as MeshError;
        // A refusal by the inviter is final; an unreachable endpoint is not.
        if (last.code !== 'ERR_JOIN') throw last;
      }
    }
    throw last;
  }

  private attempt(url: string, token: string, ms: number): Promise<JoinResult> {
    if (this.pending.has(url)) throw E.ERR_JOIN(`a join through ${url} is already in progress`);
    return new Promise<JoinResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        settle();
        reject(E.ERR_JOIN(`no answer from the inviter at ${url} within the timeout`));
      }, ms);
      const settle = () => {
        clearTimeout(timer);
        this.pending.delete(url);
      };
      this.pending.set(url, {
        url,
        token,
        resolve: (r) => {
          settle();
          resolve(r);
        },
        reject: (e) => {
          settle();
          this.host.dialer.forget(url);
          reject(e);
        },
      });
      this.host.dialer.add(url, 'join');
    });
  }

  /** Joiner: the inviter's answer. */
  async peerOnJoinRes(peer: Peer, frame: FrameOf<'joinRes'>): Promise<void> {
    const p = peer.url === undefined ? undefined : this.pending.get(peer.url);
    if (!p || p.answered) return;
    p.answered = true;
    if (!frame.ok || !frame.mesh || !frame.member) {
      const code = frame.code && isErrorCode(frame.code) ? frame.code : 'ERR_JOIN';
      return p.reject(
        E[code](`the inviter refused: ${(frame.reason ?? 'no reason').slice(0, 200)}`),
      );
    }
    const { payload } = decodeInvite(p.token);
    if (frame.mesh !== payload.mesh || peer.did !== payload.inviter) {
      return p.reject(E.ERR_JOIN('the answer is not from the inviter of the token, for its mesh'));
    }
    this.host.joinOnAccepted(peer);
    try {
      await this.journal.setMesh(frame.mesh);
      // Done when this node sees itself a member (its `member` entry synced from the
      // inviter): an operator may invite or offer right after `join` returns.
      await this.untilMember(frame.member);
    } catch (err) {
      return p.reject(err instanceof MeshError ? err : E.ERR_JOIN((err as Error).message));
    }
    this.log.info({ mesh: frame.mesh, inviter: peer.did }, 'joined the mesh');
    p.resolve({
      mesh: frame.mesh,
      inviter: payload.inviter,
      member: frame.member,
      rights: payload.rights,
      url: p.url,
    });
  }

  private async untilMember(entry: string): Promise<void> {
    const end = Date.now() + MEMBER_SYNC_MS;
    for (;;) {
      const m = await this.journal.membership();
      if (m.members.some((x) => x.did === this.host.did && x.entry === entry)) {
        await this.host.joinOnJoined(m.mesh!);
        return;
      }
      if (Date.now() > end) {
        throw E.ERR_JOIN('redeemed, but the member entry did not arrive from the inviter in time');
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Joiner: a join link closed before its answer (refused in the handshake, or dropped). */
  peerOnClose(peer: Peer, code: number, reason: string): void {
    const p = peer.url === undefined ? undefined : this.pending.get(peer.url);
    // Answered: a duplicate link replacing this one, say, is the mesh's business.
    if (!p || p.answered || code === CLOSE.duplicate) return;
    const known = Object.values(CLOSE_CODES).find((c) => c.code === code) as
      { error?: string } | undefined;
    // Refused outright (another mesh, banned): final. Dropped: the dialer retries until the deadline.
    if (known?.error && known.error !== 'ERR_HANDSHAKE' && isErrorCode(known.error)) {
      p.reject(E[known.error](`the inviter closed the link: ${reason.slice(0, 200)}`));
    }
  }

  /** Inviter: redeem a provisional peer's token; open it, or refuse it with the code. */
  async redeem(peer: Peer): Promise<void> {
    const token = peer.theirInvite!;
    try {
      const r = await this.journal.redeemInvite(token, peer.did!);
      if (peer.state !== 'open') return;
      peer.send({ t: 'joinRes', ok: true, mesh: r.mesh, member: r.member });
      peer.joining = false;
      this.log.info({ peer: peer.did, member: r.member, fresh: r.fresh }, 'invite redeemed');
      this.host.joinOnRedeemed(peer);
    } catch (err) {
      const code = err instanceof MeshError ? err.code : 'ERR_JOIN';
      const reason = (err as Error).message;
      this.log.warn({ peer: peer.did, code, reason }, 'invite refused');
      peer.send({ t: 'joinRes', ok: false, code, reason: reason.slice(0, 500) });
      peer.close(CLOSE.inviteRefused, code);
    }
  }
}
