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

/** A method forwarded to `actor.action`; `destructive` ones are written to the admin audit log. */
export interface Forward {
  actor: ActorName;
  action: string;
  destructive: boolean;
}

function forward<T extends ActorName>(
  actor: T,
  action: ActionName<T>,
  destructive = false,
): Forward {
  return { actor, action, destructive };
}

/** Methods that forward to an actor's action (the action must list `admin` among its senders). */
export const FORWARDS: Readonly<Record<string, Forward>> = {
  offer: forward('grants', 'offer'),
  subscribe: forward('grants', 'subscribe'),
  approve: forward('grants', 'approve'),
  revoke: forward('grants', 'revoke', true),
  activate: forward('grants', 'activate'),
  grants: forward('grants', 'grants'),
  peers: forward('gossip', 'peers'),
  unban: forward('gossip', 'unban', true),
  undial: forward('gossip', 'undial', true),
  'journal.tail': forward('journal', 'tail'),
  'journal.verify': forward('journal', 'verify'),
  'journal.heads': forward('journal', 'heads'),
  'journal.status': forward('journal', 'status'),
  'journal.forceSelfHead': forward('journal', 'forceSelfHead', true),
  // The mesh directory (docs/design.md §9).
  'mesh.found': forward('journal', 'found'),
  membership: forward('journal', 'membership'),
  catalog: forward('journal', 'catalog'),
  invite: forward('gossip', 'invite'),
  join: forward('gossip', 'join'),
  // Cuts a member's feed on every node: no undo but a new invite to a new key.
  expel: forward('journal', 'expel', true),
  'nft.list': forward('nft', 'list'),
  'nft.status': forward('nft', 'status'),
  'nft.plan': forward('nft', 'plan'),
  // Makes the firewall match the journal now: removes what should not be there.
  'nft.reconcile': forward('nft', 'reconcile', true),
};
