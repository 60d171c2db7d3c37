/**
 * The authorizer's checks, in their fixed, documented order (docs/design.md,
 * Grants). The first that fails decides, with its own code; nothing is
 * applied. Pure over a `GrantLookup` (the journal's views) so every refusal
 * is tested without sockets.
 *
 *   1 ERR_GRANT_NONCE         nonce unknown, already used, expired, or issued to another peer
 *   2 ERR_GRANT_SIGNATURE     the request is malformed, or its signature does not verify under its did:key
 *   3 ERR_GRANT_DID           the request's DID is not the peer authenticated on the link
 *   4 ERR_GRANT_NOT_MEMBER    closed mesh: the subscriber is not a member (or was expelled, in any mesh)
 *   5 ERR_GRANT_SUBSCRIPTION  no such subscription, or not the requester's, not to us, not for this service
 *   6 ERR_GRANT_OFFER         we offer no such service, or withdrew the offer
 *   7 ERR_GRANT_NOT_APPROVED  manual offer and no standing approval of ours
 *   8 ERR_GRANT_REVOKED       the subscriber revoked the subscription, or we revoked a grant for it
 *   9 ERR_GRANT_RATE          per-subscriber or global request rate exceeded
 *  10 ERR_GRANT_POLICY        the operator's policy denied (or failed, or timed out)
 *  11 ERR_GRANT_SOURCE_IP     the observed source IP is outside the mesh CIDRs
 *  12 ERR_GRANT_RECORD_IP     the subscriber's node record lists a mesh IP and the source is not it
 *                             (unless the offer allows any source: NATed peers)
 */
import { BlockList, isIP } from 'node:net';
import { grantRequestBytes, isDid, publicKeyFromDid, verify } from '../../runtime/crypto/index.js';
import type { ErrorCode } from '../../runtime/errors.js';
import type { AuthorizeInput as PolicyInput, Verdict } from '../../sandbox/policy.js';
import type { GrantRequest } from '../../runtime/protocol/grants.js';
import { sigFromString } from '../../runtime/domain/codec.js';

/** A signature as the wire carries it: 64 bytes, unpadded base64url. */
const SIG = /^[A-Za-z0-9_-]{86}$/;
/** Entry ids (BLAKE2b-256, lower-case hex). */
const ENTRY_ID = /^[0-9a-f]{64}$/;

/** The refusals `decide` makes (check order in the header); documented in runtime/errors.ts. */
export type GrantCode = Exclude<
  Extract<ErrorCode, `ERR_GRANT_${string}`>,
  'ERR_GRANT_APPLY' | 'ERR_GRANT_REFUSED'
>;

export interface Offer {
  id: string;
  service: string;
  port: number;
  proto: 'tcp' | 'udp';
  mode: 'auto' | 'manual';
  leaseSeconds: number;
  /** Grant the observed source even when it is not the subscriber's recorded mesh IP. */
  anySource?: boolean;
}

/** An answer now or later: the checks await either. */
type Maybe<T> = T | Promise<T>;

/** What the checks read (the journal's views, as this provider sees them). */
export interface GrantLookup {
  me: string;
  subscription(
    id: string,
  ): Maybe<{ subscriber: string; provider: string; service: string } | undefined>;
  /** Our current offer of `service`. */
  offer(service: string): Maybe<Offer | undefined>;
  /** Whether `by` revoked `target`. */
  revoked(target: string, by: string): Maybe<boolean>;
  /** Whether we revoked a grant made for `subscription` (that ends its access for good). */
  grantRevoked(subscription: string): Maybe<boolean>;
  /** The id of our approval of `subscription`, if any. */
  approval(subscription: string): Maybe<string | undefined>;
  /** Whether `did`'s entries count in this mesh (membership.ts `counts`: a member, or an open mesh). */
  counts(did: string): Maybe<boolean>;
  /** The mesh IPs of `did`'s node record, if it has one. */
  recordIps(did: string): Maybe<readonly string[] | undefined>;
}

export interface Gates {
  nonce(nonce: string, peer: string): boolean;
  rate(subscriber: string): boolean;
  policy(input: PolicyInput): Promise<Verdict>;
}

/** What the policy gate is asked: the sandbox's contract (sandbox/policy.ts), named for this side. */
export type { AuthorizeInput as PolicyInput, Verdict } from '../../sandbox/policy.js';

export type Decision =
  { allow: true; offer: Offer } | { allow: false; code: GrantCode; reason: string };

export async function decide(
  req: GrantRequest,
  seen: { peerDid: string; sourceIp: string },
  lookup: GrantLookup,
  gates: Gates,
  mesh: BlockList,
): Promise<Decision> {
  const deny = (code: GrantCode, reason: string): Decision => ({ allow: false, code, reason });
  // Not an object at all: nothing to check a nonce of (the frame decoder refuses it first).
  if (typeof req !== 'object' || req === null) {
    return deny('ERR_GRANT_NONCE', 'request is not an object');
  }
  if (typeof req.nonce !== 'string' || !gates.nonce(req.nonce, seen.peerDid)) {
    return deny('ERR_GRANT_NONCE', 'nonce unknown, used, expired or not issued to this peer');
  }
  // Only strings are signed, and only the canonical encoding of a signature is one: Node's
  // base64url decoder skips characters outside the alphabet, so `<sig>\n` would still verify.
  if (
    typeof req.service !== 'string' ||
    typeof req.subscription !== 'string' ||
    typeof req.sig !== 'string' ||
    !SIG.test(req.sig) ||
    !isDid(req.did) ||
    !signatureOk(req)
  ) {
    return deny('ERR_GRANT_SIGNATURE', 'request signature does not verify');
  }
  if (req.did !== seen.peerDid)
    return deny('ERR_GRANT_DID', 'request DID is not the connected peer');
  if (!(await lookup.counts(req.did))) {
    return deny('ERR_GRANT_NOT_MEMBER', 'the subscriber is not a member of this mesh');
  }
  // Only an entry id can name a subscription: anything else never reaches the journal's views.
  const sub = ENTRY_ID.test(req.subscription)
    ? await lookup.subscription(req.subscription)
    : undefined;
  if (
    !sub ||
    sub.subscriber !== req.did ||
    sub.provider !== lookup.me ||
    sub.service !== req.service
  ) {
    return deny('ERR_GRANT_SUBSCRIPTION', 'no such subscription by this peer to this service here');
  }
  const offer = await lookup.offer(req.service);
  if (!offer || (await lookup.revoked(offer.id, lookup.me))) {
    return deny('ERR_GRANT_OFFER', `service ${req.service} is not offered`);
  }
  if (offer.mode === 'manual') {
    const approval = await lookup.approval(req.subscription);
    if (!approval || (await lookup.revoked(approval, lookup.me))) {
      return deny('ERR_GRANT_NOT_APPROVED', 'subscription not approved');
    }
  }
  if (
    (await lookup.revoked(req.subscription, req.did)) ||
    (await lookup.grantRevoked(req.subscription))
  ) {
    return deny('ERR_GRANT_REVOKED', 'subscription revoked');
  }
  if (!gates.rate(req.did)) return deny('ERR_GRANT_RATE', 'request rate exceeded');
  let verdict: { allow: boolean; reason: string };
  try {
    verdict = await gates.policy({
      subscriber: req.did,
      service: req.service,
      subscription: req.subscription,
      sourceIp: seen.sourceIp,
      port: offer.port,
      proto: offer.proto,
    });
  } catch (err) {
    // A policy that fails denies: it never lets a request through by accident.
    return deny('ERR_GRANT_POLICY', `policy failed: ${(err as Error)?.message ?? String(err)}`);
  }
  if (verdict?.allow !== true) return deny('ERR_GRANT_POLICY', `policy: ${verdict?.reason}`);
  if (!inMesh(mesh, seen.sourceIp)) {
    return deny('ERR_GRANT_SOURCE_IP', `source ${seen.sourceIp} is outside the mesh`);
  }
  if (!offer.anySource) {
    const recorded = await lookup.recordIps(req.did);
    if (recorded && recorded.length > 0 && !recorded.includes(seen.sourceIp)) {
      return deny(
        'ERR_GRANT_RECORD_IP',
        `source ${seen.sourceIp} is not the subscriber's recorded mesh IP`,
      );
    }
  }
  return { allow: true, offer };
}

/**
 * The request's signature under its did:key. Bytes that cannot be signed (a lone
 * surrogate cannot be canonicalized) are a bad signature, not a throw.
 */
function signatureOk(req: GrantRequest): boolean {
  try {
    return verify(sigFromString(req.sig), grantRequestBytes(req), publicKeyFromDid(req.did));
  } catch {
    return false;
  }
}

/** A BlockList of the mesh CIDRs (validated by the config). */
export function meshBlocks(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const [ip, len] = c.split('/') as [string, string];
    list.addSubnet(ip, Number(len), isIP(ip) === 6 ? 'ipv6' : 'ipv4');
  }
  return list;
}

export function inMesh(mesh: BlockList, ip: string): boolean {
  const family = isIP(ip);
  if (family === 0 || ip.includes('%')) return false;
  return mesh.check(ip, family === 6 ? 'ipv6' : 'ipv4');
}
