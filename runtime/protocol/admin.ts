/**
 * The admin API's protocol (supervisor/admin.ts serves it on the Unix
 * socket; the CLI and the console speak it): the request line, the methods
 * the supervisor answers itself, and the methods forwarded to an actor's
 * action. A forwarded method's params are checked by that action's own
 * declaration (runtime/protocol/<actor>.ts) — one schema for an operator's
 * command and an actor's ask — before the method is audited or sent.
 */
import { z } from 'zod';
import type { ActionName, ActorName } from './index.js';

/** The admin protocol's version, in every request and answer. */
export const ADMIN_PROTOCOL = 1;

export const adminRequestSchema = z.strictObject({
  v: z.literal(ADMIN_PROTOCOL, { error: `v must be ${ADMIN_PROTOCOL}` }),
  id: z.union([z.string().max(64), z.number().int()], { error: 'id must be a string or integer' }),
  method: z.string().regex(/^[a-z][A-Za-z.]{0,63}$/, { error: 'method is not a method name' }),
  params: z.record(z.string(), z.unknown()).optional(),
  /** Who the client says it is; recorded beside what the OS says (supervisor/peer-cred.ts). */
  caller: z.strictObject({ uid: z.number().int().min(0) }).optional(),
  /**
   * A read made to watch the node (the console's poll): the actors asked
   * leave it out of their msgs/s, latency and traces (runtime/types.ts
   * OBSERVER_TAGS). Ignored on a method that changes something.
   */
  observer: z.literal(true).optional(),
});
export type AdminRequest = z.output<typeof adminRequestSchema>;

const actorName = z.string().regex(/^[a-z][a-z0-9_]{0,31}$/);

/** Params of the methods the supervisor answers itself. */
export const actorParam = z.strictObject({ actor: actorName });
export const levelParam = z.strictObject({
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']),
});
export const traceParam = z.strictObject({
  actor: actorName,
  count: z.number().int().min(1).max(10_000).default(100),
  ms: z.number().int().min(1).max(600_000).default(10_000),
});

/** The mesh in the `status` answer: which one, and who is in it (null while the journal is down). */
export interface MeshSummary {
  id: string | null;
  name: string | null;
  admission: string;
  known: boolean;
  members: number;
  expelled: number;
}

/**
 * A method forwarded to `actor.action`. `audited` ones — every method that
 * changes the journal, the firewall or who may talk to the node — are
 * written to the admin audit log (and the node log) before they run.
 */
export interface Forward {
  actor: ActorName;
  action: string;
  audited: boolean;
}

function forward<T extends ActorName>(actor: T, action: ActionName<T>, audited = false): Forward {
  return { actor, action, audited };
}

/** Reads: answered without a trace in the audit log. */
const read = forward;
/** Changes: the journal, the firewall, the links. */
function change<T extends ActorName>(actor: T, action: ActionName<T>): Forward {
  return forward(actor, action, true);
}

/** Methods that forward to an actor's action (the action must list `admin` among its senders). */
export const FORWARDS: Readonly<Record<string, Forward>> = {
  offer: change('grants', 'offer'),
  subscribe: change('grants', 'subscribe'),
  // Opens the firewall to a peer: the action an operator most needs to account for.
  approve: change('grants', 'approve'),
  revoke: change('grants', 'revoke'),
  activate: change('grants', 'activate'),
  grants: read('grants', 'grants'),
  'audit.grants': read('grants', 'auditVerify'),
  peers: read('gossip', 'peers'),
  unban: change('gossip', 'unban'),
  undial: change('gossip', 'undial'),
  'journal.tail': read('journal', 'tail'),
  // A job: answers at once; the CLI follows it with journal.job (no ask waits the whole verify).
  'journal.verify': read('journal', 'verifyStart'),
  'journal.job': read('journal', 'job'),
  'journal.job.cancel': read('journal', 'jobCancel'),
  'journal.heads': read('journal', 'heads'),
  'journal.status': read('journal', 'status'),
  'journal.forceSelfHead': change('journal', 'forceSelfHead'),
  // The mesh directory (docs/design.md §9).
  'mesh.found': change('journal', 'found'),
  membership: read('journal', 'membership'),
  catalog: read('journal', 'catalog'),
  invite: change('gossip', 'invite'),
  join: change('gossip', 'join'),
  // Cuts a member's feed on every node: no undo but a new invite to a new key.
  expel: change('journal', 'expel'),
  'nft.list': read('nft', 'list'),
  'nft.status': read('nft', 'status'),
  'nft.plan': read('nft', 'plan'),
  // Makes the firewall match the journal now: removes what should not be there.
  'nft.reconcile': change('nft', 'reconcile'),
};
