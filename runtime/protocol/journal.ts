/**
 * The journal writer's inbound protocol (actors/journal/actor.ts serves it):
 * every action, how its request is checked where it arrives, what it
 * answers, and who may send it.
 */
import { z } from 'zod';
import { authTranscriptSchema } from '../crypto/auth.js';
import type { Entry } from '../domain/codec.js';
import type { EntryKind } from '../domain/entries.js';
import { VIEWS } from '../domain/views.js';
import type { ViewName, ViewRowOf } from '../domain/views.js';
import type { ErrorCode } from '../errors.js';
import type { Membership } from '../domain/membership.js';
import { MAX_INVITE_MS, MAX_TOKEN_CHARS } from '../domain/invite.js';
import { action, none, schema, trusted } from './define.js';
import { jobRequest } from './jobs.js';
import type { JobState } from './jobs.js';

/** Request ids are printable ASCII, bounded: they are stored as LMDB keys. */
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;
/** A string key part longer than this could exceed LMDB's key limit once encoded. */
const MAX_KEY = 1024;
/** Most authors in one page of `heads`. */
export const MAX_HEADS_PAGE = 10_000;

const safeInt = (min: number) => z.number().int().min(min).max(Number.MAX_SAFE_INTEGER);

export const appendRequest = z.strictObject({
  // Kind and body are the journal's own checks (ERR_UNKNOWN_KIND, ERR_SCHEMA naming the path).
  kind: z.string().max(64),
  body: z.unknown().optional(),
  requestId: z.string().regex(REQUEST_ID, {
    error: 'must be 1-128 printable ASCII characters',
  }),
});

export const headsRequest = z
  .strictObject({
    after: z.string().max(MAX_KEY).optional(),
    limit: z.number().int().min(1).max(MAX_HEADS_PAGE).optional(),
  })
  .optional();

export const rangeRequest = z.strictObject({
  author: z.string().max(MAX_KEY),
  from: safeInt(0),
  to: safeInt(0).optional(),
  limit: z.number().int().min(1).max(100_000).optional(),
});

export const tailRequest = z
  .strictObject({
    after: safeInt(0).optional(),
    limit: z.number().int().min(1).max(100_000).optional(),
    /** The newest `last` arrivals (oldest of them first), as `tail -n` shows them; not with `after`. */
    last: z.number().int().min(1).max(100_000).optional(),
  })
  .refine((r) => r.last === undefined || r.after === undefined, {
    error: 'last and after are exclusive: the newest N, or the arrivals after N',
  })
  .optional();

export const viewRequest = z.strictObject({
  view: z.enum(VIEWS),
  key: z.string().max(MAX_KEY).optional(),
  after: z.string().max(MAX_KEY).optional(),
});

const grantFields = z.string().max(128);
export const signGrantRequestRequest = z.strictObject({
  nonce: grantFields,
  service: grantFields,
  subscription: grantFields,
});

/** Two entries of one author at one seq; whether they prove a fork is the journal's check (ERR_BAD_PROOF). */
export const proofRequest = z.strictObject({
  author: z.string().max(MAX_KEY),
  seq: safeInt(1),
  entries: z.array(z.unknown()).max(2),
});

const DID = /^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$/;
const didField = () => z.string().regex(DID, { error: 'must be an Ed25519 did:key' });
const hexId = () => z.string().regex(/^[0-9a-f]{64}$/, { error: 'must be a 64-hex-digit id' });
/** An invite is valid a day unless the operator says otherwise. */
export const DEFAULT_INVITE_MS = 24 * 3600_000;

/** Found a mesh on this node (the name is checked by the `mesh` entry's schema). */
export const foundRequest = z.strictObject({
  name: z.string().max(64),
  admission: z.enum(['closed', 'open']).default('closed'),
});

/** Sign an invite as this node; `endpoints` are the inviter's gossip URLs (gossip adds them). */
export const signInviteRequest = z.strictObject({
  rights: z.array(z.string().max(32)).max(16).default(['service.offer']),
  expiresMs: z.number().int().min(1000).max(MAX_INVITE_MS).default(DEFAULT_INVITE_MS),
  for: didField().optional(),
  endpoints: z.array(z.string().max(256)).max(8),
});

export const redeemInviteRequest = z.strictObject({
  token: z.string().max(MAX_TOKEN_CHARS),
  did: didField(),
});

export const expelRequest = z.strictObject({ did: didField() });
export const setMeshRequest = z.strictObject({ mesh: hexId() });

/** This node's own record; appended only when a field differs from the stored one. */
export const announceRequest = z.strictObject({
  name: z.string().max(64),
  gossip: z.string().max(256),
  meshIp: z.string().max(64),
  version: z.string().max(64).optional(),
});

/** Most rows in one catalog page. */
export const MAX_CATALOG_PAGE = 10_000;

export const catalogRequest = z.strictObject({
  what: z.enum(['nodes', 'services', 'subscriptions', 'members']),
  after: z.string().max(MAX_KEY).optional(),
  limit: z.number().int().min(1).max(MAX_CATALOG_PAGE).default(1000),
});

// --- replies ---------------------------------------------------------------

export interface AppendResult {
  id: string;
  author: string;
  seq: number;
  ts: number;
}

export interface IngestResult {
  appended: number;
  duplicates: number;
  /** Entries above an expelled member's cut, not taken (present only when some were). */
  cut?: number;
}

/** One page of the directory (actors/journal/catalog.ts). */
export interface CatalogPage<R> {
  rows: R[];
  /** Pass as `after` for the next page; null at the end. */
  next: string | null;
}

export interface NodeRow {
  did: string;
  name: string;
  gossip: string;
  meshIp: string;
  version: string | null;
  announcedAt: number;
  member: boolean;
  self: boolean;
}

export interface ServiceRow {
  offer: string;
  provider: string;
  providerName: string | null;
  service: string;
  port: number;
  proto: 'tcp' | 'udp';
  mode: 'auto' | 'manual';
  leaseSeconds: number;
  anySource: boolean;
  /** This node's subscription to it, if any. */
  subscription: { id: string; state: SubscriptionRow['state'] } | null;
}

export interface SubscriptionRow {
  id: string;
  direction: 'mine' | 'to me';
  subscriber: string;
  subscriberName: string | null;
  provider: string;
  providerName: string | null;
  service: string;
  state: 'auto' | 'pending' | 'approved' | 'revoked' | 'no offer';
  subscribedAt: number;
}

export interface MemberRow {
  did: string;
  name: string | null;
  rights: string[];
  invitedBy: string | null;
  invitedByName: string | null;
  entry: string;
  since: number;
  /** Set for an expelled member: who expelled it and where its feed is cut. */
  expelled: { by: string; cut: number } | null;
}

/**
 * A page of `nodes`, and whether this node has a record at all: a node
 * that announces none (no gossip.advertise, a wildcard listen) is in no
 * page, and the operator is told why rather than left to wonder.
 */
export type NodesPage = CatalogPage<NodeRow> & { selfRecord: boolean };

export type CatalogAnswer = NodesPage | CatalogPage<ServiceRow | SubscriptionRow | MemberRow>;

export interface SignedInvite {
  token: string;
  mesh: string;
  rights: string[];
  expires: number;
  for: string | null;
  nonceHash: string;
}

export interface Redeemed {
  mesh: string;
  member: string;
  did: string;
  rights: string[];
  /** False when the DID was already a member through this token (a retried join). */
  fresh: boolean;
}

export interface HeadsPage {
  heads: Record<string, number>;
  /** The last author of this page when there are more (pass it as `after`), else null. */
  next: string | null;
}

export interface TailRow {
  arrival: number;
  id: string;
  entry: Entry;
}

export type VerifyReport =
  | { ok: true; feeds: number; entries: number }
  | {
      ok: false;
      feeds: number;
      entries: number;
      author: string;
      seq: number;
      code: string;
      message: string;
    };

/** Two valid, different entries of one author at one seq. */
export interface Proof {
  author: string;
  seq: number;
  entries: [Entry, Entry];
}

export interface JournalStatus {
  did: string;
  /** The mesh this node belongs to (null: none, an open directory). */
  mesh: {
    id: string | null;
    name: string | null;
    admission: 'open' | 'closed';
    known: boolean;
    members: number;
    cuts: number;
  };
  feeds: number;
  entries: number;
  equivocations: number;
  badSignatures: number;
  unaudited: number;
  queued: number;
  awaitingSelfHead: boolean;
}

/** One committed entry, as subscribers hear of it. */
export interface EntrySummary {
  id: string;
  author: string;
  seq: number;
  kind: EntryKind;
}

/** The `view` answer: one row (with a key) or a page of rows (without). */
export type ViewAnswer<V extends ViewName = ViewName> =
  ViewRowOf[V] | null | Array<[string, ViewRowOf[V]]>;

/**
 * Whose fault a refused `ingest` (or `proof`) is, by its code: `forged`,
 * the entries are forged or broken; `chain`, they do not extend the feed
 * where they claim to; any other code is the journal's own trouble (busy,
 * restarting, disk full), not the peer's. Gossip charges the peer by this.
 */
export const INGEST_FAULTS: Partial<Record<ErrorCode, 'forged' | 'chain'>> = {
  ERR_BAD_SIGNATURE: 'forged',
  ERR_MALFORMED_ENTRY: 'forged',
  ERR_UNKNOWN_KIND: 'forged',
  ERR_TOO_LARGE: 'forged',
  ERR_SCHEMA: 'forged',
  ERR_BAD_DID: 'forged',
  ERR_BAD_ENCODING: 'forged',
  ERR_BAD_PROOF: 'forged',
  ERR_SEQ_GAP: 'chain',
  ERR_PREV_MISMATCH: 'chain',
};

export function ingestFault(code: ErrorCode): 'forged' | 'chain' | undefined {
  return INGEST_FAULTS[code];
}

export const journalProtocol = {
  append: action<AppendResult>()(schema(appendRequest), ['grants', 'admin']),
  /**
   * Trusted: from gossip, batches of up to MAX_BATCH entries a peer sent;
   * every entry is checked one by one by the journal (structure, schema,
   * size, signature), so a schema here would walk the batch twice.
   */
  ingest: action<IngestResult>()(
    trusted<{ entries: unknown[] }>('entries are checked one by one by the journal (checkEntry)'),
    ['gossip', 'admin'],
  ),
  /** The version vector, whole (no data) or one page (`limit`, `after`). */
  heads: action<Record<string, number> | HeadsPage>()(schema(headsRequest), [
    'gossip',
    'grants',
    'admin',
  ]),
  range: action<Entry[]>()(schema(rangeRequest), ['gossip', 'admin']),
  get: action<Entry | null>()(schema(z.strictObject({ id: z.string().max(MAX_KEY) })), [
    'gossip',
    'grants',
    'admin',
  ]),
  tail: action<TailRow[]>()(schema(tailRequest), ['admin']),
  view: action<ViewAnswer>()(schema(viewRequest), ['gossip', 'grants', 'admin']),
  /** `journal verify` of the whole journal, in one answer (tests; small journals). */
  verify: action<VerifyReport>()(none(), ['admin']),
  /** The same as a job (runtime/jobs.ts): answers at once; `job` follows it, `jobCancel` ends it. */
  verifyStart: action<JobState>()(none(), ['admin']),
  job: action<JobState>()(schema(jobRequest), ['admin']),
  jobCancel: action<JobState>()(schema(jobRequest), ['admin']),
  /** The sender hears of every commit from now on (`appended` tells). */
  subscribe: action<void>()(none(), ['gossip', 'grants']),
  identity: action<{ did: string }>()(none(), ['gossip', 'grants', 'admin']),
  status: action<JournalStatus>()(none(), ['admin']),
  /** Signs exactly a handshake transcript of this node's own role, nothing else. */
  signAuth: action<string>()(schema(authTranscriptSchema), ['gossip']),
  signGrantRequest: action<{ did: string; sig: string }>()(schema(signGrantRequestRequest), [
    'grants',
  ]),
  proof: action<{ recorded: boolean }>()(schema(proofRequest), ['gossip', 'admin']),
  proofs: action<Proof[]>()(none(), ['gossip', 'admin']),
  selfSynced: action<{ head: number }>()(none(), ['gossip']),
  /** The membership of this node's mesh (runtime/domain/membership.ts), derived from the views. */
  membership: action<Membership>()(none(), ['gossip', 'grants', 'admin']),
  /** A page of the directory: nodes, services, subscriptions (mine and to me), members. */
  catalog: action<CatalogAnswer>()(schema(catalogRequest), ['admin']),
  found: action<AppendResult & { mesh: string }>()(schema(foundRequest), ['admin']),
  signInvite: action<SignedInvite>()(schema(signInviteRequest), ['gossip']),
  redeemInvite: action<Redeemed>()(schema(redeemInviteRequest), ['gossip']),
  expel: action<AppendResult & { cut: number }>()(schema(expelRequest), ['admin']),
  /** After a join: the mesh this node now belongs to (refused if it belongs to another). */
  setMesh: action<{ mesh: string }>()(schema(setMeshRequest), ['gossip']),
  announce: action<{ appended: boolean; id: string | null }>()(schema(announceRequest), ['gossip']),
  forceSelfHead: action<{ head: number }>()(none(), ['admin']),
};

export type JournalProtocol = typeof journalProtocol;
