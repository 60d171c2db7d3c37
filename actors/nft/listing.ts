/**
 * What our table holds, read from `nft -j list table inet <table>` (or made
 * by the memory backend in the same shape): the input to reconciliation.
 *
 * Everything is kept, ours or not, because reconciliation must also see
 * what does not belong (a foreign chain, a rule without our comment, a set
 * of another type) in order to remove it. Set elements are keyed by their
 * canonical address (addr.ts), with the absolute time they expire: the
 * listing gives whole seconds left (`expires`), so an expiry read here is
 * accurate to about a second; an element without a timeout never expires.
 */
import { nftFailed } from '../../runtime/errors.js';
import { parseIp } from './addr.js';

export interface ChainInfo {
  type?: string;
  hook?: string;
  prio?: number;
  policy?: string;
}

export interface RuleInfo {
  chain: string;
  handle: number;
  comment: string | null;
}

export interface SetInfo {
  /** A map (`map` in the listing) rather than a set. */
  map: boolean;
  type: string;
  flags: string[];
  /** Canonical address → expiry (ms since epoch; Infinity = no timeout). */
  elements: Map<string, number>;
  /** Elements that are not plain addresses (ranges, prefixes, concatenations). */
  odd: number;
}

export interface Snapshot {
  chains: Map<string, ChainInfo>;
  /** In chain order. */
  rules: RuleInfo[];
  sets: Map<string, SetInfo>;
  /** Other objects in the table (counters, quotas, flowtables, …), as "kind name". */
  other: string[];
}

export function emptySnapshot(): Snapshot {
  return { chains: new Map(), rules: [], sets: new Map(), other: [] };
}

type Json = Record<string, unknown>;

/** Parse the listing of table `table`; `now` is when it was taken. */
export function parseListing(text: string, table: string, now: number): Snapshot {
  let doc: { nftables?: unknown };
  try {
    doc = JSON.parse(text) as { nftables?: unknown };
  } catch (err) {
    throw nftFailed('list', `output is not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(doc?.nftables)) throw nftFailed('list', 'output has no nftables array');
  const snap = emptySnapshot();
  for (const obj of doc.nftables as Json[]) {
    const [kind, body] = Object.entries(obj)[0] ?? [];
    if (!kind || typeof body !== 'object' || body === null) continue;
    const b = body as Json;
    if (kind === 'metainfo' || kind === 'table') continue;
    if (b.table !== table) continue;
    switch (kind) {
      case 'chain':
        snap.chains.set(String(b.name), {
          type: b.type as string | undefined,
          hook: b.hook as string | undefined,
          prio: b.prio as number | undefined,
          policy: b.policy as string | undefined,
        });
        break;
      case 'rule':
        snap.rules.push({
          chain: String(b.chain),
          handle: Number(b.handle),
          comment: typeof b.comment === 'string' ? b.comment : null,
        });
        break;
      case 'set':
      case 'map':
        snap.sets.set(String(b.name), setInfo(b, kind === 'map', now));
        break;
      default:
        snap.other.push(`${kind} ${String(b.name)}`);
    }
  }
  return snap;
}

function setInfo(b: Json, map: boolean, now: number): SetInfo {
  const info: SetInfo = {
    map,
    type: typeof b.type === 'string' ? b.type : JSON.stringify(b.type),
    flags: Array.isArray(b.flags) ? (b.flags as string[]) : [],
    elements: new Map(),
    odd: 0,
  };
  for (const e of Array.isArray(b.elem) ? (b.elem as unknown[]) : []) {
    // "10.0.0.1", or {"elem": {"val": "10.0.0.1", "timeout": 60, "expires": 59}}
    const inner = typeof e === 'object' && e !== null ? (e as Json).elem : undefined;
    const val = typeof e === 'string' ? e : (inner as Json | undefined)?.val;
    const addr = typeof val === 'string' ? parseIp(val) : null;
    if (!addr) {
      info.odd++;
      continue;
    }
    const { timeout, expires } = (inner ?? {}) as { timeout?: unknown; expires?: unknown };
    const left =
      typeof expires === 'number' ? expires : typeof timeout === 'number' ? timeout : null;
    info.elements.set(addr.text, left === null ? Infinity : now + left * 1000);
  }
  return info;
}
