/**
 * The grant authorizer's inbound protocol (actors/grants/actor.ts serves
 * it), and the grant types that cross threads: requests as gossip carries
 * them, results, live grants, a consumer's activations.
 */
import { z } from 'zod';
import type { AuditVerdict } from '../audit-log.js';
import type { Membership } from '../domain/membership.js';
import type { AppendResult } from './journal.js';
import type { EntrySummary } from './journal.js';
import { action, none, schema, trusted } from './define.js';

/** A consumer's signed grant request, as gossip hands it to the authorizer (docs/design.md, the grant flow step 3). */
export interface GrantRequest {
  did: string;
  service: string;
  subscription: string;
  nonce: string;
  sig: string;
}

/** The authorizer's answer, as gossip carries it back to the consumer (step 4). */
export interface GrantResult {
  ok: boolean;
  /** A refusal's code. From a provider it is the peer's word: shown, never trusted. */
  code?: string;
  reason?: string;
  endpoint?: { ip: string; port: number; proto: 'tcp' | 'udp' };
  expires?: number;
  grant?: string;
}

/** A provider's live grant, as the authorizer keeps it and the admin `grants` answer lists it. */
export interface LiveGrant {
  grant: string;
  subscription: string;
  subscriber: string;
  service: string;
  ip: string;
  port: number;
  proto: 'tcp' | 'udp';
  expires: number;
}

/** A consumer's activation: the endpoint a provider granted it, until `expires`. */
export interface Activation {
  subscription: string;
  provider: string;
  service: string;
  endpoint: { ip: string; port: number; proto: 'tcp' | 'udp' };
  expires: number;
  grant: string;
  /** When the provider granted it (ms). */
  at: number;
  /**
   * `active` while renewals succeed; `retrying` after a transient failure
   * (backing off, the last lease possibly still good); `revoked` after a
   * permanent refusal or the provider's ungrant: no more renewals. Absent in
   * files written before it existed: active.
   */
  state?: ActivationState;
  /** Why it is retrying or ended: the provider's code, when. */
  error?: { code: string; at: number };
}

export type ActivationState = 'active' | 'retrying' | 'revoked';

/**
 * Refusals that renewing cannot change: the provider's (or our own) act
 * stands until someone writes another entry. A consumer that meets one ends
 * the activation at once instead of retrying (issue 18: a revoked grant was
 * retried every 1.7 s for the whole lease, each retry a deny in the
 * provider's audit log). Everything else (nonce, rate, the provider's
 * firewall, timeouts, a link down) is transient and retried with backoff.
 */
export const PERMANENT_REFUSALS: ReadonlySet<string> = new Set([
  'ERR_GRANT_SIGNATURE',
  'ERR_GRANT_DID',
  'ERR_GRANT_SUBSCRIPTION',
  'ERR_GRANT_OFFER',
  'ERR_GRANT_NOT_APPROVED',
  'ERR_GRANT_REVOKED',
  'ERR_GRANT_POLICY',
  'ERR_GRANT_SOURCE_IP',
  'ERR_GRANT_NOT_MEMBER',
  'ERR_GRANT_RECORD_IP',
  'ERR_EXPELLED',
]);

/** The admin `grants` answer. */
export interface GrantsAnswer {
  live: LiveGrant[];
  activations: Activation[];
}

/** Strings a peer or an operator hands the authorizer: bounded here, checked by the decision. */
const text = (max: number) => z.string().max(max);
const requestId = z.string().max(256).optional();

/** A grant request's shape (the signature and every value are the decision's checks). */
export const grantRequestSchema = z.strictObject({
  did: text(256),
  service: text(64),
  subscription: text(256),
  nonce: text(256),
  sig: text(256),
});

export const authorizeRequest = z.strictObject({
  request: grantRequestSchema,
  peerDid: text(256),
  sourceIp: text(64),
  localIp: text(64).optional(),
  receivedAt: z.number().optional(),
});

// Operator verbs: values the journal's body schemas check (ERR_SCHEMA naming the field);
// unknown fields are refused, not ignored: a misspelt one would silently do nothing.
export const offerRequest = z.strictObject({
  service: text(64),
  port: z.number(),
  proto: text(8),
  mode: text(8),
  leaseSeconds: z.number(),
  /** Grant the observed source even if the subscriber's record lists other mesh IPs (NAT). */
  anySource: z.boolean().optional(),
  /** Offer even port 22 or a port with established connections (they would be dropped). */
  force: z.boolean().optional(),
  requestId,
});
export const subscribeRequest = z.strictObject({
  provider: text(256),
  service: text(64),
  requestId,
});
export const approveRequest = z.strictObject({ subscription: text(256), requestId });
export const revokeRequest = z.strictObject({ target: text(256), requestId });
export const activateRequest = z.strictObject({ subscription: text(256) });

export interface GrantsStatus {
  did: string;
  live: number;
  nonces: number;
  activations: number;
  audit: unknown;
  meshCidrs: string[];
  grantLatencyMs: number[];
  /** Our offers that grant the observed source even off the subscriber's recorded mesh IP. */
  anySource: string[];
}

export const grantsProtocol = {
  status: action<GrantsStatus>()(none(), ['admin']),
  grants: action<GrantsAnswer>()(none(), ['admin']),
  offer: action<AppendResult>()(schema(offerRequest), ['admin']),
  subscribe: action<AppendResult>()(schema(subscribeRequest), ['admin']),
  approve: action<AppendResult>()(schema(approveRequest), ['admin']),
  revoke: action<AppendResult>()(schema(revokeRequest), ['admin']),
  activate: action<Activation>()(schema(activateRequest), ['admin']),
  /** Re-check the grant audit log's hash chain (here: its one writer is this actor). */
  auditVerify: action<AuditVerdict & { path: string }>()(none(), ['admin']),
  /** Provider side: a single-use nonce for the peer on this link. */
  challenge: action<{ nonce: string; expiresAt: number }>()(
    schema(z.strictObject({ peer: text(256) })),
    ['gossip'],
  ),
  authorize: action<GrantResult>()(schema(authorizeRequest), ['gossip']),
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
};

export type GrantsProtocol = typeof grantsProtocol;
