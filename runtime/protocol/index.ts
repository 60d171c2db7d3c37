/**
 * Every actor's inbound protocol by actor name: what `Actor.ask` and
 * `Actor.tell` are typed by, and what each dispatcher checks requests with.
 */
import type { ProtocolSpec, ReplyOf, RequestOf } from './define.js';
import { gossipProtocol } from './gossip.js';
import { grantsProtocol } from './grants.js';
import { journalProtocol } from './journal.js';
import { nftProtocol } from './nft.js';

export const PROTOCOLS = {
  journal: journalProtocol,
  gossip: gossipProtocol,
  grants: grantsProtocol,
  nft: nftProtocol,
} as const;

export type Protocols = typeof PROTOCOLS;
export type ActorName = keyof Protocols;
export type ActionName<T extends ActorName> = keyof Protocols[T] & string;
export type Request<T extends ActorName, A extends ActionName<T>> = RequestOf<Protocols[T], A>;
export type Reply<T extends ActorName, A extends ActionName<T>> = ReplyOf<Protocols[T], A>;

/** `[data]` or `[data?]`: an action whose request may be absent can be asked without one. */
export type DataArgs<Req, Rest extends unknown[] = []> = undefined extends Req
  ? [data?: Req, ...Rest]
  : [data: Req, ...Rest];

export function isActorName(name: string): name is ActorName {
  return Object.hasOwn(PROTOCOLS, name);
}

/** The declaration of `actor.action`, if there is one. */
export function actionSpec(actor: string, action: string): ProtocolSpec[string] | undefined {
  if (!isActorName(actor)) return undefined;
  const p = PROTOCOLS[actor] as ProtocolSpec;
  return Object.hasOwn(p, action) ? p[action] : undefined;
}

export type { ProtocolSpec, Handlers, Sender } from './define.js';
