/**
 * Who gets a peer slot and which node records are dialed: pure decisions
 * over plain data, so the mesh (mesh.ts) only gathers the inputs and acts.
 * Both exist because outsiders are cheap: throwaway keys filled every slot
 * of an open node, and node records by any key aimed every node of the mesh
 * at hosts of the attacker's choosing (a hostile review; gossip/bounds test).
 */
import { parseGossipUrl } from '../../runtime/domain/gossip-url.js';
import { blake2b256Hex } from '../../runtime/crypto/index.js';
import type { MembershipIndex } from '../../runtime/domain/membership.js';
import { E, notAllowed } from '../../runtime/errors.js';
import type { MeshError } from '../../runtime/errors.js';

const utf8 = new TextEncoder();

export type MeshVerdict = { admit: true; joining?: boolean } | { admit: false; error: MeshError };

/**
 * Whether the mesh admits an authenticated peer (docs/design.md §9):
 *  1. an expelled DID never (any mesh, any override: its feed is cut);
 *  2. a peer naming another mesh never (ERR_OTHER_MESH, 4012);
 *  3. a peer presenting an invite, provisionally: its token is redeemed
 *     before it sees anything, and a bad one is refused with its own code;
 *  4. in an open mesh, anyone;
 *  5. in a closed one, a member, an allowlisted DID (the operator's
 *     override), or a peer this node dialed from its config or a join.
 */
export function meshAdmission(
  peer: { did: string; mesh?: string; invite?: string; trustedDial: boolean },
  ctx: {
    meshId: string | null;
    closed: boolean;
    membership: MembershipIndex;
    allowlisted: (did: string) => boolean;
  },
): MeshVerdict {
  if (ctx.membership.cutOf(peer.did) !== undefined) {
    return { admit: false, error: notAllowed('expelled from this mesh') };
  }
  if (peer.mesh !== undefined && ctx.meshId !== null && peer.mesh !== ctx.meshId) {
    return {
      admit: false,
      error: E.ERR_OTHER_MESH(`peer belongs to mesh ${peer.mesh.slice(0, 12)}, not ours`),
    };
  }
  // Every token is answered by its redemption, coded: a member presenting its
  // token again (a join retried after a lost answer) gets the same answer, and
  // a token for a node of no mesh gets ERR_INVITE_MESH rather than silence.
  if (peer.invite !== undefined) return { admit: true, joining: true };
  if (!ctx.closed) return { admit: true };
  if (ctx.membership.isMember(peer.did) || ctx.allowlisted(peer.did) || peer.trustedDial) {
    return { admit: true };
  }
  return { admit: false, error: notAllowed('not a member of this closed mesh') };
}

/** A candidate or an open peer, as the slot rule sees it. */
export interface SlotPeer {
  trusted: boolean;
  remoteIp: string;
  score: number;
  connectedAt: number;
}

export type Admission<P> =
  | { admit: true; evict?: P }
  | { admit: false; reason: 'too many peers from this address' | 'max peers reached' };

/**
 * Configured and allowlisted peers are trusted and always get in (the worst
 * untrusted peer, lowest score then youngest, makes room); untrusted ones
 * fill what is left, at most `maxPerIp` from one source address.
 */
export function admission<P extends SlotPeer>(
  peer: SlotPeer,
  open: readonly P[],
  limits: { maxPeers: number; maxPerIp: number },
): Admission<P> {
  if (!peer.trusted) {
    const sameIp = open.filter((p) => !p.trusted && p.remoteIp === peer.remoteIp).length;
    if (sameIp >= limits.maxPerIp)
      return { admit: false, reason: 'too many peers from this address' };
  }
  if (open.length < limits.maxPeers) return { admit: true };
  if (!peer.trusted) return { admit: false, reason: 'max peers reached' };
  const victim = open
    .filter((p) => !p.trusted)
    .sort((a, b) => a.score - b.score || b.connectedAt - a.connectedAt)[0];
  return victim ? { admit: true, evict: victim } : { admit: false, reason: 'max peers reached' };
}

export interface NodeRecord {
  did: string;
  gossip: string;
}

/**
 * The node records worth dialing: by a trusted author, not ourselves, not
 * already linked or dialed, not dropped by the operator, in the narrow URL
 * form (parseGossipUrl) of the transport we speak, and no more than the
 * `room` left under max_dial_targets. `refused` counts the rest that were new.
 */
export function recordsToDial(
  records: readonly NodeRecord[],
  known: {
    self: string;
    trusted: ReadonlySet<string>;
    linked: (did: string) => boolean;
    dialing: (url: string) => boolean;
    dropped: ReadonlySet<string>;
    tls: boolean;
    room: number;
  },
): { dial: NodeRecord[]; refused: number } {
  const dial: NodeRecord[] = [];
  let refused = 0;
  // Which records first when there is room for only some: the order of
  // BLAKE2b(self + did), a different random-looking order on every node, so
  // each node dials its own sample and the mesh stays connected (a random
  // graph of degree >= 2 is connected with high probability) instead of
  // every node dialing the same few.
  const rank = (did: string) => blake2b256Hex(utf8.encode(`${known.self} ${did}`));
  const ordered = [...records].sort((a, b) => (rank(a.did) < rank(b.did) ? -1 : 1));
  for (const r of ordered) {
    if (r.did === known.self || known.linked(r.did) || known.dialing(r.gossip)) continue;
    const url = parseGossipUrl(r.gossip);
    const usable =
      known.trusted.has(r.did) &&
      !known.dropped.has(r.gossip) &&
      !('error' in url) &&
      url.tls === known.tls &&
      dial.length < known.room;
    if (usable) dial.push(r);
    else refused++;
  }
  return { dial, refused };
}
