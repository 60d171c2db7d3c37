/**
 * Who gets a peer slot and which node records are dialed: pure decisions
 * over plain data, so the mesh (mesh.ts) only gathers the inputs and acts.
 * Both exist because outsiders are cheap: throwaway keys filled every slot
 * of an open node, and node records by any key aimed every node of the mesh
 * at hosts of the attacker's choosing (a hostile review; gossip/bounds test).
 */
import { parseGossipUrl } from '../../runtime/domain/gossip-url.js';

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
  for (const r of records) {
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
