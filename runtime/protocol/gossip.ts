/**
 * The sync gossiper's inbound protocol (actors/gossip/actor.ts serves it):
 * the operator's view and verbs, the journal's commit notices, and the
 * consumer side of the grant flow that gossip carries to a provider.
 */
import { z } from 'zod';
import { action, none, schema, trusted } from './define.js';
import type { GrantResult } from './grants.js';
import { grantRequestSchema } from './grants.js';
import { signInviteRequest } from './journal.js';
import type { EntrySummary, SignedInvite } from './journal.js';
import type { Membership } from '../domain/membership.js';
import { MAX_TOKEN_CHARS } from '../domain/invite.js';

const DID = /^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$/;

export const unbanRequest = z.strictObject({
  did: z.string().regex(DID, { error: 'must be a did:key' }),
});
export const undialRequest = z.strictObject({ url: z.string().min(1).max(512) });
export const grantNonceRequest = z.strictObject({
  provider: z.string().max(256),
  /** The provider's gossip endpoint from its node record, when the journal has one. */
  url: z.string().max(512).optional(),
});
export const grantRequestRequest = z.strictObject({
  provider: z.string().max(256),
  rid: z.string().max(64),
  request: grantRequestSchema,
});

/** What the journal signs, less the endpoints: gossip adds its own (the journal's schema, defaults included). */
export const inviteRequest = signInviteRequest.omit({ endpoints: true });
export const joinRequest = z.strictObject({
  token: z.string().min(1).max(MAX_TOKEN_CHARS),
  /** How long to wait for the inviter (ms). */
  timeoutMs: z.number().int().min(100).max(600_000).default(15_000),
});

export interface JoinResult {
  mesh: string;
  inviter: string;
  member: string;
  rights: string[];
  url: string;
}

/** One link, as `peers` lists it. */
export interface PeerInfo {
  did: string | null;
  address: string;
  url: string | null;
  direction: 'in' | 'out';
  state: 'handshake' | 'open' | 'closed';
  connectedAt: number;
  lastSeen: number;
  score: number;
  /** Entries behind, per feed. */
  lag: Record<string, number>;
  framesIn: number;
  framesOut: number;
  framesSkipped: number;
  buffered: number;
  bytesIn: number;
  bytesOut: number;
}

/** The gossiper's state (`status`, `peers`); `{starting: true}` before it listens. */
export interface GossipStatus {
  did: string;
  listening: number;
  transport: 'tls1.3' | 'plaintext';
  sendBudgetBytes: number;
  selfSynced: boolean;
  mesh: {
    id: string | null;
    name: string | null;
    admission: 'open' | 'closed';
    known: boolean;
    members: number;
  };
  /** This node's record as it announces it; null when it cannot (no endpoint to advertise). */
  record: { name: string; gossip: string; meshIp: string; version: string } | null;
  peers: PeerInfo[];
  dialing: Array<{
    url: string;
    did: string | null;
    attempt: number;
    source: string;
    author: string | null;
    /** How the target's last link ended: why it keeps failing (4003: not a member, …). */
    lastClose: { code: number; reason: string; at: number } | null;
  }>;
  bans: Array<{ did: string; until: number; count: number; reason: string }>;
  frozen: string[];
  counters: Record<string, number>;
}

export type GossipStatusAnswer = GossipStatus | { starting: true };

export const gossipProtocol = {
  status: action<GossipStatusAnswer>()(none(), ['admin']),
  peers: action<GossipStatusAnswer>()(none(), ['admin']),
  unban: action<{ unbanned: boolean }>()(schema(unbanRequest), ['admin']),
  undial: action<{ dropped: boolean; reason?: string }>()(schema(undialRequest), ['admin']),
  /** Trusted: the journal's pipelined commit notices, built by the journal itself. */
  appended: action<void>()(
    trusted<{ entries: EntrySummary[] }>('built by the journal from entries it committed'),
    ['journal'],
  ),
  /** Trusted: the journal's membership, told whenever a commit changed it. */
  membership: action<void>()(
    trusted<Membership>('derived by the journal from entries it committed'),
    ['journal'],
  ),
  /** Print an invite to this mesh: the journal signs it, with this node's gossip endpoints. */
  invite: action<SignedInvite & { endpoints: string[] }>()(schema(inviteRequest), ['admin']),
  /** Join a mesh with a token: dial its inviter, redeem it there, belong to its mesh. */
  join: action<JoinResult>()(schema(joinRequest), ['admin']),
  grantNonce: action<{ rid: string; nonce: string }>()(schema(grantNonceRequest), ['grants']),
  grantRequest: action<GrantResult>()(schema(grantRequestRequest), ['grants']),
};

export type GossipProtocol = typeof gossipProtocol;
