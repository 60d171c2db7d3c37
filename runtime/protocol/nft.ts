/**
 * The nft executor's inbound protocol (actors/nft/actor.ts serves it): what
 * the grants actor and the operator send it, and what comes back (the
 * contract; the behaviour is described in actors/nft/actor.ts). Every shape
 * that crosses the grants–nft channel is here.
 *
 * Conventions:
 *  - `ip` is an IPv4 or IPv6 literal inside the mesh CIDRs; the executor
 *    keys grants by its canonical form (RFC 5952 for IPv6), which is what
 *    `list` shows: `fd00:0::1` and `fd00::1` are one grant.
 *  - Times are milliseconds since the epoch (`expiresAt`), durations are
 *    whole seconds (`leaseSeconds`).
 *  - A request is validated whole before anything is applied: one bad
 *    value refuses the request with its code and nothing of it is applied.
 */
import { action, handlerChecked, none } from './define.js';

export type Proto = 'tcp' | 'udp';
export const PROTOS: readonly Proto[] = ['tcp', 'udp'];

/** An offered service: traffic to `port`/`proto` is dropped except from granted addresses. */
export interface Service {
  proto: Proto;
  port: number;
}

/** Allow `ip` into the service for `leaseSeconds` from the commit (add, or refresh if present). */
export interface GrantAdd extends Service {
  ip: string;
  leaseSeconds: number;
}

/** A grant to remove (removing one the kernel already expired is not an error). */
export interface GrantRef extends Service {
  ip: string;
}

/** A grant with its absolute end: what `reconcile` takes (the grants actor's LiveGrant, as the firewall sees it). */
export interface GrantLease extends Service {
  ip: string;
  expiresAt: number;
}

/**
 * `apply` (grants): one atomic change. `add` of a service not yet offered
 * offers it (its sets and rules are created in the same transaction).
 * `withdraw` removes a service's rules and sets, and so every grant into
 * it; a service is never withdrawn implicitly (fail closed: a port once
 * offered stays closed to everyone not granted).
 */
export interface ApplyRequest {
  add?: GrantAdd[];
  remove?: GrantRef[];
  offer?: Service[];
  withdraw?: Service[];
}

/** The transaction a request went out in (requests arriving together share one). */
export interface TxInfo {
  /** Per executor instance, counting from 1. */
  id: number;
  /** Requests coalesced into this transaction. */
  requests: number;
  /** Set elements the transaction touched. */
  elements: number;
  /** Time nft took to commit it. */
  ms: number;
  committedAt: number;
}

/**
 * What `apply` did, once committed. Compact on purpose (a bulk apply of
 * 100,000 grants answers in a few numbers): the caller has its request, so
 * add i's lease ends at `at + add[i].leaseSeconds * 1000` — the kernel's
 * timeout started at the commit, a few ms later, so never earlier.
 */
export interface ApplyResult {
  /** When the transaction was planned (ms since the epoch). */
  at: number;
  /** Adds that were new. */
  added: number;
  /** Indexes into the request's `add` of grants already allowed: their timeout restarted. */
  refreshed: number[];
  /** Removes done (whether or not the kernel still had the element). */
  removed: number;
  /** Services whose sets and rules this request created. */
  offered: Service[];
  withdrawn: Service[];
  tx: TxInfo;
}

/**
 * `reconcile` (grants): the complete desired state. The executor diffs it
 * against the kernel (`nft -j list table`) and adds what is missing,
 * removes what is extra and refreshes timeouts that differ by more than
 * RECONCILE_SLACK_MS; it never flushes and rebuilds. Grants whose
 * `expiresAt` has passed are skipped (the kernel expired them). `services`,
 * when given, is the complete list of offered services (others are
 * withdrawn, a grant outside it is refused); when omitted, the services
 * are those already offered plus those the grants name. The desired state
 * is kept and re-applied by the periodic check, so a deleted table comes
 * back. The operator may ask `reconcile` with no data: a re-check now.
 */
export interface ReconcileRequest {
  grants: GrantLease[];
  services?: Service[];
}

export interface ReconcileResult {
  added: number;
  removed: number;
  refreshed: number;
  /** Already right: left untouched in the kernel. */
  unchanged: number;
  /** Desired grants already past their expiresAt, skipped. */
  expired: number;
  rulesAdded: number;
  rulesRemoved: number;
  setsAdded: number;
  setsRemoved: number;
  tableCreated: boolean;
  /** Listing + diff + commit. */
  ms: number;
  /** null when nothing needed changing. */
  tx: TxInfo | null;
}

/** A grant as the kernel holds it; `expiresAt` has the listing's 1 s resolution, null = no timeout. */
export interface ListedGrant extends Service {
  ip: string;
  expiresAt: number | null;
}

/** `list` (grants, admin): the table as the kernel (or the memory backend) has it now. */
export interface ListResult {
  backend: BackendKind;
  table: string;
  exists: boolean;
  services: Service[];
  grants: ListedGrant[];
  /** Objects in our table that are not ours (the next reconcile removes them). */
  foreign: string[];
}

/**
 * `plan` (grants, admin): the exact batch an ApplyRequest would run, checked
 * but not committed; with no request (the operator's `nft plan`), the batch
 * a reconcile would run now.
 */
export interface PlanResult {
  batch: string;
  /** `nft`: checked by `nft -c -f -`; `memory`: checked against the memory model. */
  checkedBy: BackendKind;
  elements: number;
}

export type BackendKind = 'nft' | 'memory';

/** `status` (grants, admin). */
export interface StatusResult {
  actor: string;
  since: number;
  backend: BackendKind;
  /** false: memory backend, nothing is enforced. */
  enforcing: boolean;
  table: string;
  services: number;
  /** Desired live grants (as last reconciled and applied). */
  grants: number;
  /** A reconcile has given the executor the full desired state (periodic checks run). */
  desiredKnown: boolean;
  transactions: number;
  failedTransactions: number;
  /** Times a periodic check or reconcile found the table damaged (deleted, flushed, edited) and repaired it. */
  restores: number;
  pending: number;
  lastReconcile: (ReconcileResult & { at: number }) | null;
  lastError: { code: string; message: string; at: number } | null;
  /** Why this backend runs: configured, or what `auto` found (memory: why nothing is enforced). */
  why?: string;
}

/** Limits on one request, and why: each bounds a structured clone and one transaction. */
export const LIMITS = {
  /** add + remove + offer + withdraw items in one apply. */
  applyItems: 100_000,
  /** grants in one reconcile: the whole desired state of a large provider. */
  reconcileGrants: 500_000,
  /** Offered services: three rules each in one chain, evaluated in order. */
  services: 1024,
  /** A lease is renewed, not eternal: one year at most. */
  leaseSeconds: 366 * 24 * 3600,
} as const;

/** The executor checks every request whole before anything is applied (actors/nft/validate.ts). */
const STRICT =
  'actors/nft/validate.ts: whole-request strict check with ERR_NFT_* codes, mesh CIDRs included';

export const nftProtocol = {
  apply: action<ApplyResult>()(handlerChecked<ApplyRequest>(STRICT), ['grants']),
  /** From grants: the complete desired state; from the operator, no data: re-check the kernel now. */
  reconcile: action<ReconcileResult>()(handlerChecked<ReconcileRequest | undefined>(STRICT), [
    'grants',
    'admin',
  ]),
  list: action<ListResult>()(none(), ['grants', 'admin']),
  plan: action<PlanResult>()(handlerChecked<ApplyRequest>(STRICT), ['grants', 'admin']),
  status: action<StatusResult>()(none(), ['grants', 'admin']),
};

export type NftProtocol = typeof nftProtocol;
