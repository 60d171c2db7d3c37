/**
 * The journal's side of the mesh directory (docs/design.md §9): founding a
 * mesh, signing and redeeming invites, expelling, and this node's own
 * record. Each is a local append of a membership or `node` entry, checked
 * against the membership the store derives (`can`) before it is signed; a
 * refused one writes nothing.
 *
 * Why the inviter alone redeems its tokens: it is the single writer of its
 * feed, so "was this nonce used?" has one answer (the request record
 * `invite:<nonceHash>`, written in the member entry's own transaction), and
 * no node has to trust a token it did not sign.
 */
import { randomBytes } from 'node:crypto';
import type { KeyPair } from '../../runtime/crypto/index.js';
import type { Body, EntryKind, Right } from '../../runtime/domain/entries.js';
import { decodeInvite, encodeInvite, parseRights } from '../../runtime/domain/invite.js';
import { E, MeshError } from '../../runtime/errors.js';
import type { z } from 'zod';
import type {
  AppendResult,
  Redeemed,
  SignedInvite,
  announceRequest,
  foundRequest,
  signInviteRequest,
} from '../../runtime/protocol/journal.js';
import type { JournalStore } from './store.js';

/** How the directory appends: the actor's own append path, as this node. */
export type LocalAppend = (
  kind: EntryKind,
  body: Record<string, unknown>,
  requestId: string,
) => Promise<AppendResult>;

export class Directory {
  constructor(
    private readonly store: JournalStore,
    private readonly key: KeyPair,
    private readonly append: LocalAppend,
    /** The node's mesh was recorded: the writer tells gossip and grants the new membership. */
    private readonly meshSet: () => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Found a mesh: a `mesh` entry by this node, and this node belongs to it. */
  async found(req: z.output<typeof foundRequest>): Promise<AppendResult & { mesh: string }> {
    const held = this.store.meshId();
    if (held !== null) {
      throw E.ERR_MESH_EXISTS(`this node already belongs to mesh ${held.slice(0, 12)}`);
    }
    // A founding whose entry committed but whose mesh id was not recorded (a
    // crash between the two) is finished, not founded twice.
    const requestId = `mesh:found:${this.key.did}`;
    const earlier = this.store.request(requestId);
    if (earlier) {
      await this.store.setMeshId(earlier.id);
      this.meshSet();
      const e = this.store.byId(earlier.id)!;
      return { id: earlier.id, author: e.author, seq: e.seq, ts: e.ts, mesh: earlier.id };
    }
    const body: Body<'mesh'> = { name: req.name, admission: req.admission, createdAt: this.now() };
    const result = await this.append('mesh', body, requestId);
    await this.store.setMeshId(result.id);
    this.meshSet();
    return { ...result, mesh: result.id };
  }

  /** Sign an invite offering `rights` (a subset of this node's own). */
  signInvite(req: z.output<typeof signInviteRequest>): SignedInvite {
    const mesh = this.meshOrThrow();
    const rights = parseRights(req.rights);
    this.checkCanInvite(rights);
    const invite = encodeInvite(
      {
        v: 1,
        mesh,
        inviter: this.key.did,
        endpoints: req.endpoints,
        rights,
        expires: this.now() + req.expiresMs,
        nonce: randomBytes(32).toString('base64url'),
        ...(req.for ? { for: req.for } : {}),
      },
      this.key,
    );
    return {
      token: invite.token,
      mesh,
      rights,
      expires: invite.payload.expires,
      for: req.for ?? null,
      nonceHash: invite.nonceHash,
    };
  }

  /**
   * Redeem a token `did` presented on an authenticated link: every check,
   * then the `member` entry. A token already redeemed by the same DID
   * answers the same entry (a retried join); by another, ERR_INVITE_USED.
   */
  async redeem(token: string, did: string): Promise<Redeemed> {
    const invite = decodeInvite(token);
    const p = invite.payload;
    const mesh = this.store.meshId();
    if (p.inviter !== this.key.did || mesh === null || p.mesh !== mesh) {
      throw E.ERR_INVITE_MESH('the token was not issued by this node for its mesh');
    }
    if (p.for !== undefined && p.for !== did) {
      throw E.ERR_INVITE_DID(`the token is bound to ${p.for}, not ${did}`);
    }
    const requestId = `invite:${invite.nonceHash}`;
    const used = this.store.view('invites', `${invite.nonceHash} ${this.key.did}`);
    const record = this.store.request(requestId);
    if (used && used.did !== did) throw E.ERR_INVITE_USED('the token was already redeemed');
    if (!used && record === undefined && p.expires <= this.now()) {
      throw E.ERR_INVITE_EXPIRED(`the token expired at ${new Date(p.expires).toISOString()}`);
    }
    const membership = this.store.membership();
    if (!used && membership.isMember(did)) {
      // A member already (invited by someone else): nothing to write, the token stays unused.
      const m = membership.member(did)!;
      return { mesh, member: m.entry, did, rights: m.rights, fresh: false };
    }
    if (membership.cutOf(did) !== undefined) {
      throw E.ERR_EXPELLED(`${did} was expelled from this mesh`);
    }
    this.checkCanInvite(p.rights, true);
    const body: Body<'member'> = { mesh, did, rights: p.rights, invite: invite.nonceHash };
    let result: AppendResult;
    try {
      result = await this.append('member', body, requestId);
    } catch (err) {
      if (err instanceof MeshError && err.code === 'ERR_REQUEST_REUSED') {
        throw E.ERR_INVITE_USED('the token was already redeemed');
      }
      throw err;
    }
    return { mesh, member: result.id, did, rights: p.rights, fresh: !used };
  }

  /** Expel a member: its feed is cut at its head as this node sees it now. */
  async expel(did: string): Promise<AppendResult & { cut: number }> {
    const mesh = this.meshOrThrow();
    const membership = this.store.membership();
    if (!membership.can(this.key.did, 'member.expel')) {
      throw E.ERR_NO_RIGHT('this node does not hold member.expel');
    }
    if (did === this.key.did) throw E.ERR_BAD_REQUEST('a node cannot expel itself');
    if (did === membership.data.founder) throw E.ERR_BAD_REQUEST('the founder cannot be expelled');
    if (!membership.isMember(did)) {
      throw membership.cutOf(did) !== undefined
        ? E.ERR_EXPELLED(`${did} is already expelled`)
        : E.ERR_NOT_MEMBER(`${did} is not a member of this mesh`);
    }
    const cut = this.store.head(did)?.seq ?? 0;
    const body: Body<'member-revoke'> = { mesh, did, cut };
    const result = await this.append('member-revoke', body, `expel:${mesh}:${did}`);
    return { ...result, cut };
  }

  /** Join: this node now belongs to `mesh` (from a redeemed token). */
  async setMesh(mesh: string): Promise<{ mesh: string }> {
    const held = this.store.meshId();
    if (held !== null && held !== mesh) {
      throw E.ERR_OTHER_MESH(
        `this node belongs to mesh ${held.slice(0, 12)}, not ${mesh.slice(0, 12)}`,
      );
    }
    if (held === null) {
      await this.store.setMeshId(mesh);
      this.meshSet();
    }
    return { mesh };
  }

  /** This node's record: appended only when it differs from the one stored. */
  async announce(
    req: z.output<typeof announceRequest>,
  ): Promise<{ appended: boolean; id: string | null }> {
    const stored = this.store.view('nodes', this.key.did);
    if (
      stored &&
      stored.name === req.name &&
      stored.gossip === req.gossip &&
      stored.meshIp === req.meshIp &&
      stored.version === req.version
    ) {
      return { appended: false, id: stored.id };
    }
    const body: Record<string, unknown> = {
      name: req.name,
      gossip: req.gossip,
      meshIp: req.meshIp,
    };
    if (req.version !== undefined) body.version = req.version;
    const seq = (this.store.head(this.key.did)?.seq ?? 0) + 1;
    const result = await this.append('node', body, `node:${seq}:${randomBytes(6).toString('hex')}`);
    return { appended: true, id: result.id };
  }

  private meshOrThrow(): string {
    const mesh = this.store.meshId();
    if (mesh === null) throw E.ERR_NO_MESH('this node belongs to no mesh: found or join one');
    return mesh;
  }

  /** This node holds member.invite and every right in `rights`. */
  private checkCanInvite(rights: readonly Right[], redeeming = false): void {
    const m = this.store.membership();
    if (!m.can(this.key.did, 'member.invite')) {
      // At redemption it is the joiner's refusal: the invite's rights are no longer ours to give.
      throw redeeming
        ? E.ERR_INVITE_RIGHTS('the inviter no longer holds member.invite')
        : E.ERR_NO_RIGHT('this node does not hold member.invite');
    }
    const missing = rights.filter((r) => !m.can(this.key.did, r));
    if (missing.length > 0) {
      throw E.ERR_INVITE_RIGHTS(`the inviter does not hold ${missing.join(', ')}`);
    }
  }
}
