/**
 * The journal's entry kinds and their body schemas: the one shared domain
 * module (docs/design.md §1). The journal validates every entry against it before
 * append; the grant authorizer reads views shaped by it. Nothing else
 * defines entry shapes.
 *
 * Bodies are strict (unknown fields are refused), so nothing — least of all
 * a secret — rides along unnoticed. Values are strings, safe integers and
 * booleans only: no floats (canonical JSON of floats is where
 * implementations disagree).
 */
import { isIP } from 'node:net';
import { z } from 'zod';

/** Lower-case names for services and node names: safe as nft set names too. */
const NAME = /^[a-z][a-z0-9_]{0,31}$/;
/** did:key of an Ed25519 key: 'did:key:z6Mk' + base58btc. */
const DID = /^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$/;
/** Entry ids: BLAKE2b-256, lower-case hex. */
const ID = /^[0-9a-f]{64}$/;
/** A lease longer than 30 days is a typo, not a lease. */
const MAX_LEASE_SECONDS = 30 * 24 * 3600;

const name = () => z.string().regex(NAME, { error: 'must match ^[a-z][a-z0-9_]{0,31}$' });
const did = () => z.string().regex(DID, { error: 'must be an Ed25519 did:key' });
const id = () => z.string().regex(ID, { error: 'must be a 64-hex-digit entry id' });
/** An IP literal, no IPv6 zone id (`%eth0` is local to a host and unbounded in length). */
const ip = () =>
  z
    .string()
    .max(39, { error: 'must be an IP address literal' })
    .refine((s) => isIP(s) !== 0 && !s.includes('%'), { error: 'must be an IP address literal' });
/** The rights a member can hold (docs/design.md §9); membership.ts resolves them. */
export const RIGHTS = [
  'member.invite',
  'member.expel',
  'service.offer',
  'config.publish',
  'operator.steer',
] as const;
export type Right = (typeof RIGHTS)[number];
/** A software version as a node announces it: bounded, no spaces or markup. */
const VERSION = /^[0-9A-Za-z][0-9A-Za-z.+-]{0,31}$/;

const int = (min: number, max: number) =>
  z
    .number()
    .int({ error: `must be an integer in ${min}..${max}` })
    .min(min, { error: `must be an integer in ${min}..${max}` })
    .max(max, { error: `must be an integer in ${min}..${max}` });

export const bodySchemas = {
  /** A mesh member announces itself: how to gossip with it, its mesh address. */
  node: z.strictObject({
    name: name(),
    gossip: z
      .string()
      .max(256)
      .regex(/^wss?:\/\/[^\s]+$/, { error: 'must be a ws:// or wss:// URL' }),
    meshIp: ip(),
    /** The meshnode version the node runs (optional: records before it lack it). */
    version: z.string().regex(VERSION, { error: 'must be a version like 0.2.0' }).optional(),
  }),
  /** A mesh is founded: its id is this entry's id, its founder this entry's author. */
  mesh: z.strictObject({
    name: name(),
    /** closed: only members are admitted (and the allowlist); open: any DID that proves itself. */
    admission: z.enum(['closed', 'open'], { error: 'must be closed or open' }),
    createdAt: int(0, Number.MAX_SAFE_INTEGER),
  }),
  /** An inviter admits a DID into a mesh with some of its own rights (an invite redeemed). */
  member: z.strictObject({
    mesh: id(),
    did: did(),
    rights: z
      .array(z.enum(RIGHTS, { error: `must be one of ${RIGHTS.join(', ')}` }))
      .max(RIGHTS.length)
      .refine((r) => new Set(r).size === r.length, { error: 'must not name a right twice' }),
    /** BLAKE2b-256 of the invite's nonce: a token is redeemed once (single writer of the feed). */
    invite: id(),
  }),
  /** A member with member.expel cuts a member's feed at the seq the expeller saw as its head. */
  'member-revoke': z.strictObject({
    mesh: id(),
    did: did(),
    /** The expelled feed is kept up to this seq (its head as the expeller saw it). */
    cut: int(0, Number.MAX_SAFE_INTEGER),
  }),
  /** A provider offers a service on a port. */
  offer: z.strictObject({
    service: name(),
    port: int(1, 65535),
    proto: z.enum(['tcp', 'udp'], { error: 'must be tcp or udp' }),
    mode: z.enum(['auto', 'manual'], { error: 'must be auto or manual' }),
    leaseSeconds: int(1, MAX_LEASE_SECONDS),
    /**
     * Grant to the link's observed source even when the subscriber's node
     * record lists other mesh IPs (a NATed peer); off unless set.
     */
    anySource: z.boolean({ error: 'must be true or false' }).optional(),
  }),
  /** A consumer subscribes to a provider's service. */
  subscribe: z.strictObject({ provider: did(), service: name() }),
  /** A provider approves a subscription (manual offers). */
  approve: z.strictObject({ subscription: id() }),
  /** The author withdraws one of its own offers, subscriptions or approvals. */
  revoke: z.strictObject({ target: id() }),
  /** The provider's audit of what its firewall allowed. */
  grant: z.strictObject({
    subscription: id(),
    subscriber: did(),
    service: name(),
    ip: ip(),
    expires: int(0, Number.MAX_SAFE_INTEGER),
  }),
  /** The provider's audit of a removal. */
  ungrant: z.strictObject({
    grant: id(),
    subscriber: did(),
    service: name(),
    ip: ip(),
    reason: z.enum(['revoked', 'expired', 'withdrawn'], {
      error: 'must be revoked, expired or withdrawn',
    }),
  }),
} as const;

export type EntryKind = keyof typeof bodySchemas;
export const ENTRY_KINDS = Object.keys(bodySchemas) as EntryKind[];
export type Body<K extends EntryKind> = z.output<(typeof bodySchemas)[K]>;

/** The kinds membership (membership.ts) is derived from. */
export const MEMBERSHIP_KINDS: ReadonlySet<EntryKind> = new Set<EntryKind>([
  'mesh',
  'member',
  'member-revoke',
]);

export function isEntryKind(kind: unknown): kind is EntryKind {
  return typeof kind === 'string' && Object.hasOwn(bodySchemas, kind);
}
