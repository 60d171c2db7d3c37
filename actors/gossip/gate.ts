/**
 * Who may be linked: the mesh's membership as gossip last heard it, the
 * operator's allowlist file, and the dial targets this node chose — the
 * inputs of the mesh's rule (policy.ts meshAdmission) and of which peers
 * and node records are trusted. The peer table (mesh.ts) asks; this file
 * decides nothing the policy does not.
 */
import { MembershipIndex, NO_MESH } from '../../runtime/domain/membership.js';
import type { Membership } from '../../runtime/domain/membership.js';
import type { MeshError } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/log.js';
import { Allowlist } from './allowlist.js';
import type { Dialer } from './dialer.js';
import type { Peer } from './peer.js';
import { meshAdmission } from './policy.js';

export class Gate {
  /** Who is in the mesh, as the journal last told it. */
  membership = new MembershipIndex(NO_MESH);
  /** The operator's override in a closed mesh, and the whole rule under gossip.mode = closed. */
  private readonly allowlist: Allowlist | undefined;

  constructor(
    private readonly options: { mode: 'open' | 'closed'; allowlist: string },
    private readonly dialer: Dialer,
    private readonly log: Logger,
  ) {
    if (options.allowlist !== '') this.allowlist = new Allowlist(options.allowlist);
  }

  setMembership(data: Membership): void {
    this.membership = new MembershipIndex(data);
  }

  /** The mesh this node belongs to, or null (none: an open directory). */
  get meshId(): string | null {
    return this.membership.data.mesh;
  }

  /** Closed: the mesh's own rule, or gossip.mode = closed (the allowlist alone, with no mesh). */
  get closed(): boolean {
    return this.membership.closed || this.options.mode === 'closed';
  }

  /** The mesh's rule for this peer; marks an invite's joiner provisional. */
  refusal(peer: Peer): MeshError | null {
    const verdict = meshAdmission(
      {
        did: peer.did!,
        mesh: peer.theirMesh,
        invite: peer.theirInvite,
        trustedDial: this.dialedTrusted(peer),
      },
      {
        meshId: this.meshId,
        closed: this.closed,
        membership: this.membership,
        allowlisted: (d) => this.allowlist?.has(d) === true,
      },
    );
    if (!verdict.admit) return verdict.error;
    if (verdict.joining && peer.state === 'handshake') peer.joining = true;
    return null;
  }

  /** A link we dialed to a configured peer or a join's inviter. */
  dialedTrusted(peer: Peer): boolean {
    if (!peer.url || peer.direction !== 'out') return false;
    const source = this.dialer.targets.get(peer.url)?.source;
    return source === 'config' || source === 'join';
  }

  /** A peer we dialed ourselves, or one whose DID is trusted. */
  isTrusted(peer: Peer, trusted: ReadonlySet<string>): boolean {
    if (this.dialedTrusted(peer)) return true;
    return peer.did !== undefined && trusted.has(peer.did);
  }

  /** DIDs we have reason to trust: our dial targets' (once proved), the allowlist, the mesh's members. */
  trustedDids(): Set<string> {
    const dids = new Set<string>();
    for (const d of this.dialer.targets.values())
      if (d.source !== 'discovered' && d.did) dids.add(d.did);
    if (this.allowlist) for (const did of this.allowlist.dids()) dids.add(did);
    // Their records are signed by DIDs the mesh admitted.
    for (const m of this.membership.data.members) dids.add(m.did);
    return dids;
  }

  /** Re-read the allowlist if it changed; true if the list changed. */
  refreshAllowlist(): boolean {
    if (!this.allowlist) return false;
    const r = this.allowlist.refresh();
    if (r.error) this.log.warn({ path: this.allowlist.path, error: r.error }, 'allowlist kept');
    else if (r.changed) this.log.info({ dids: this.allowlist.size }, 'allowlist loaded');
    return r.changed;
  }
}
