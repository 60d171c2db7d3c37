/**
 * How an actor's inbound protocol is declared: for each action, how its
 * request is checked where it arrives, the type of its reply, and which
 * senders are authorities for it. Sender and receiver import the same
 * declaration (runtime/protocol/<actor>.ts), so a payload's shape is written
 * once: `Actor.ask` is typed by it at compile time and the dispatcher checks
 * it at run time, before the handler runs (ERR_BAD_REQUEST naming the field).
 *
 * Four ways a request is checked, chosen per action:
 *  - `schema(z…)`: a zod schema, parsed at the receiving dispatcher; the
 *    handler gets the parsed value (defaults filled in).
 *  - `none()`: the action takes no data (absent, or `{}` as the admin API
 *    sends it); anything else is refused. Checked without zod, so an actor
 *    whose actions all take none (the nft executor's reads, a test probe)
 *    does not load zod at all: its import is 60-90 ms of a restart here.
 *  - `trusted<T>(why)`: only the compile-time type. For hot paths from a
 *    trusted in-process producer (pipelined tells, ingest batches whose
 *    entries the journal checks one by one anyway); `why` says why, and it
 *    is listed by the catalogue test and in docs/design.md.
 *  - `handlerChecked<T>(why)`: the handler's own strict validator checks it
 *    whole, with codes of its own (the nft executor's ERR_NFT_*). The
 *    dispatcher does not check it twice.
 */
import type { z } from 'zod';
import { badRequest } from '../errors.js';

/** Who may send: the actors of the node, and the main thread's admin endpoint. */
export type Sender = 'journal' | 'gossip' | 'grants' | 'nft' | 'admin';

/** How the receiving dispatcher checks one action's request. */
export type RequestCheck<T> =
  | { kind: 'schema'; schema: z.ZodType<T> }
  | { kind: 'none' }
  | { kind: 'trusted'; why: string }
  | { kind: 'handlerChecked'; why: string };

/**
 * One action. `Req` is what the sender passes (the schema's input), `Parsed`
 * what the handler receives (its output), `Rep` the reply.
 */
export interface ActionSpec<Req, Parsed, Rep> {
  request: RequestCheck<Parsed>;
  from: readonly Sender[];
  /** Phantom fields: types only, never read. */
  readonly _req?: Req;
  readonly _rep?: Rep;
}

/** Every action an actor serves. */
export type ProtocolSpec = Record<string, ActionSpec<unknown, unknown, unknown>>;

/** What the sender of `action` passes. */
export type RequestOf<P extends ProtocolSpec, A extends keyof P> =
  P[A] extends ActionSpec<infer Req, unknown, unknown> ? Req : never;
/** What the handler of `action` receives. */
export type ParsedOf<P extends ProtocolSpec, A extends keyof P> =
  P[A] extends ActionSpec<unknown, infer Parsed, unknown> ? Parsed : never;
/** What `action` answers. */
export type ReplyOf<P extends ProtocolSpec, A extends keyof P> =
  P[A] extends ActionSpec<unknown, unknown, infer Rep> ? Rep : never;

/** The handlers for a whole protocol: one per action, none missing, none extra. */
export type Handlers<P extends ProtocolSpec> = {
  [A in keyof P]: (req: ParsedOf<P, A>, from: Sender) => ReplyOf<P, A> | Promise<ReplyOf<P, A>>;
};

/** A request checked by a zod schema at the receiving boundary. */
export function schema<S extends z.ZodType>(
  s: S,
): RequestCheck<z.output<S>> & { input?: [z.input<S>] } {
  return { kind: 'schema', schema: s as unknown as z.ZodType<z.output<S>> };
}

/** No data: absent, or an empty object. */
export function none(): RequestCheck<undefined> & { input?: [Record<string, never> | undefined] } {
  return { kind: 'none' };
}

/** A request checked by its compile-time type only (say why in `why`). */
export function trusted<T>(why: string): RequestCheck<T> & { input?: [T] } {
  return { kind: 'trusted', why };
}

/** A request the handler checks whole with its own strict validator (say which in `why`). */
export function handlerChecked<T>(why: string): RequestCheck<T> & { input?: [T] } {
  return { kind: 'handlerChecked', why };
}

/**
 * Declare one action: `action<Reply>()(check, from)`. The reply type is
 * given, the request types come from the check.
 */
export function action<Rep>() {
  return <Parsed, Req>(
    request: RequestCheck<Parsed> & { input?: [Req] },
    from: readonly Sender[],
  ): ActionSpec<unknown extends Req ? Parsed : Req, Parsed, Rep> => ({ request, from });
}

/**
 * Parse `data` with a schema, or throw ERR_BAD_REQUEST naming the first bad
 * field: `journal.append.requestId: …` (`label` is `actor.action`; without
 * one, the path alone, as the admin API names the fields of its request line).
 */
export function parseWith<T>(s: z.ZodType<T>, data: unknown, label: string): T {
  const r = s.safeParse(data);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
  const path = [...issue.path.map(String), ...keys.slice(0, 1)].join('.');
  const where = label ? (path ? `${label}.${path}` : label) : path || 'request';
  throw badRequest(`${where}: ${issue.message}`);
}

/** Check a request as its action declares, at the receiving boundary. */
export function checkRequest<T>(check: RequestCheck<T>, data: unknown, label: string): T {
  if (check.kind === 'schema') return parseWith(check.schema, data, label);
  if (check.kind === 'none') {
    if (data !== undefined && !isEmptyObject(data)) throw badRequest(`${label}: takes no data`);
    return undefined as T;
  }
  return data as T;
}

function isEmptyObject(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return (proto === Object.prototype || proto === null) && Object.keys(v).length === 0;
}
