/**
 * The names the executor gives things in its table, derived only from
 * validated values (proto, port, family), so nothing a peer sends ever
 * becomes a name. They are also how a listing is read back: a set or rule
 * comment that parses here is ours; anything else in the table is foreign.
 *
 *   set   tcp_22_v4, tcp_22_v6        (type ipv4_addr / ipv6_addr, flags timeout)
 *   rules tcp_22_v4, tcp_22_v6        (accept from the set, by comment)
 *         tcp_22_drop                 (everyone else)
 */
import { nftBadName } from '../../runtime/errors.js';
import type { Family } from './addr.js';
import type { Proto, Service } from '../../runtime/protocol/nft.js';

/** Every name that reaches a batch: table, chain, set, comment. */
export const NAME = /^[a-z][a-z0-9_]{0,31}$/;
/** The one base chain in our table. */
export const CHAIN = 'input';

export type RuleKind = 'v4' | 'v6' | 'drop';
export const RULE_KINDS: readonly RuleKind[] = ['v4', 'v6', 'drop'];

/** A service's key in maps: `tcp_22`. */
export const serviceKey = (proto: Proto, port: number): string => `${proto}_${port}`;

export const setName = (proto: Proto, port: number, family: Family): string =>
  `${proto}_${port}_v${family}`;

export const ruleComment = (proto: Proto, port: number, kind: RuleKind): string =>
  `${proto}_${port}_${kind}`;

const OURS = /^(tcp|udp)_([1-9]\d{0,4})_(v4|v6|drop)$/;

/** A set name or rule comment of ours, parsed; null for anything else. */
export function parseOurName(name: string): (Service & { kind: RuleKind }) | null {
  const m = OURS.exec(name);
  if (!m) return null;
  const port = Number(m[2]);
  if (port > 65535) return null;
  return { proto: m[1] as Proto, port, kind: m[3] as RuleKind };
}

/** Guard for anything interpolated into a batch as a name. */
export function checkName(what: string, name: string): string {
  if (!NAME.test(name)) throw nftBadName(what, name);
  return name;
}
