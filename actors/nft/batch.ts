/**
 * A batch: the changes of one nft transaction as plain data, and its text.
 *
 * Order inside a batch (nft applies it as one transaction, in order):
 *  1. delete rules, then foreign chains, then sets (a set goes only after
 *     the rules that reference it);
 *  2. `add table` and `add chain` — both idempotent, so every batch also
 *     recreates a table someone deleted;
 *  3. new sets, then rules: accepts are inserted at the top of the chain
 *     and drops appended at the bottom, so every accept precedes every drop
 *     whatever order services came in;
 *  4. elements, per set, in three statements:
 *       add element    … { removed and refreshed, timeout 1s }
 *       delete element … { removed and refreshed }
 *       add element    … { refreshed and new, with their timeouts }
 *     The first `add` makes the `delete` valid whether or not the kernel
 *     still has the element (one it already expired would otherwise abort
 *     the whole batch with ENOENT; nft 1.0.6 has no `destroy element`), and
 *     delete-then-add restarts a live element's timeout (kernel 6.1 does not
 *     update a timeout on `add`). New elements need only the last statement.
 *
 * Every name and value interpolated here was validated (validate.ts) or
 * derived from validated values (names.ts); `render` checks the finished
 * text once more against the few characters a batch can contain, so a bug
 * upstream cannot turn into nft syntax (`;`, `$`, `#`, quotes in values,
 * `include`, …).
 */
import { nftBadName } from '../../runtime/errors.js';
import type { Family } from './addr.js';
import { CHAIN, checkName, ruleComment, setName } from './names.js';
import type { RuleKind } from './names.js';
import type { Proto } from '../../runtime/protocol/nft.js';

/** The short timeout an element gets just before its delete (it never outlives the batch). */
const DOOMED_TIMEOUT = '1s';
/** Characters a rendered batch may contain (comments are our own `"tcp_22_v4"`). */
const BATCH_CHARS = /^[a-z0-9_ .:,;{}@"\n]*$/;

/**
 * The comment of a table this node created. A table of our name without it
 * was made by someone else: the executor refuses to manage it (it would
 * delete that table's sets within a reconcile) unless told to adopt it.
 */
export const TABLE_MARK = 'meshnode: managed by the meshnode nft executor';

export interface RuleSpec {
  proto: Proto;
  port: number;
  kind: RuleKind;
}

export interface ElementOps {
  family: Family;
  /** Addresses to take out. */
  remove: string[];
  /** Addresses in the set whose timeout restarts: [ip, timeout ms]. */
  refresh: Array<[string, number]>;
  /** Addresses not in the set: [ip, timeout ms]. */
  add: Array<[string, number]>;
}

export interface Batch {
  deleteRules: number[];
  deleteChains: string[];
  deleteSets: Array<{ name: string; map: boolean }>;
  /** Ensure the table and our base chain exist. */
  table: boolean;
  addSets: Array<{ name: string; family: Family }>;
  addRules: RuleSpec[];
  elements: Map<string, ElementOps>;
}

export function emptyBatch(): Batch {
  return {
    deleteRules: [],
    deleteChains: [],
    deleteSets: [],
    table: false,
    addSets: [],
    addRules: [],
    elements: new Map(),
  };
}

/** The element ops of `set`, created empty on first use. */
export function elementsOf(batch: Batch, set: string, family: Family): ElementOps {
  let ops = batch.elements.get(set);
  if (!ops) batch.elements.set(set, (ops = { family, remove: [], refresh: [], add: [] }));
  return ops;
}

export function isEmpty(b: Batch): boolean {
  return (
    b.deleteRules.length === 0 &&
    b.deleteChains.length === 0 &&
    b.deleteSets.length === 0 &&
    !b.table &&
    b.addSets.length === 0 &&
    b.addRules.length === 0 &&
    elementCount(b) === 0
  );
}

/** Elements the batch touches (each address once). */
export function elementCount(b: Batch): number {
  let n = 0;
  for (const e of b.elements.values()) n += e.remove.length + e.refresh.length + e.add.length;
  return n;
}

/**
 * The batch as `nft -f` text, for table `inet <table>`. With `refreshByAdd`
 * (the kernel updates timeouts on `add`, see backend.ts) refreshed elements
 * skip the add-delete pair and go straight into the final `add`.
 */
export function render(b: Batch, table: string, refreshByAdd = false): string {
  const t = `inet ${checkName('table', table)}`;
  const out: string[] = [];
  for (const h of b.deleteRules) out.push(`delete rule ${t} ${CHAIN} handle ${handle(h)}`);
  // Flush them all before deleting any: one may jump to another.
  for (const c of b.deleteChains) out.push(`flush chain ${t} ${checkName('chain', c)}`);
  for (const c of b.deleteChains) out.push(`delete chain ${t} ${c}`);
  for (const s of b.deleteSets)
    out.push(`delete ${s.map ? 'map' : 'set'} ${t} ${checkName('set', s.name)}`);
  if (b.table) {
    out.push(
      // The mark that says we created it (a no-op on a table that exists).
      `add table ${t} { comment "${TABLE_MARK}"; }`,
      `add chain ${t} ${CHAIN} { type filter hook input priority filter; policy accept; }`,
    );
  }
  for (const s of b.addSets) {
    const type = s.family === 4 ? 'ipv4_addr' : 'ipv6_addr';
    out.push(`add set ${t} ${checkName('set', s.name)} { type ${type}; flags timeout; }`);
  }
  for (const r of b.addRules) out.push(ruleText(t, r));
  for (const [set, e] of b.elements) {
    const s = `${t} ${checkName('set', set)}`;
    if (e.remove.length + (refreshByAdd ? 0 : e.refresh.length) > 0) {
      const doomed: string[] = [];
      for (const ip of e.remove) doomed.push(addr(ip));
      if (!refreshByAdd) for (const [ip] of e.refresh) doomed.push(addr(ip));
      out.push(
        `add element ${s} { ${doomed.join(` timeout ${DOOMED_TIMEOUT}, `)} timeout ${DOOMED_TIMEOUT} }`,
      );
      out.push(`delete element ${s} { ${doomed.join(', ')} }`);
    }
    if (e.refresh.length + e.add.length > 0) {
      const fresh: string[] = [];
      // Leases of one batch are mostly equal: their timeout text is made once.
      let lastMs = -1;
      let lastText = '';
      for (const list of [e.refresh, e.add]) {
        for (const [ip, ms] of list) {
          if (ms !== lastMs) lastText = ` timeout ${timeout((lastMs = ms))}`;
          fresh.push(addr(ip) + lastText);
        }
      }
      out.push(`add element ${s} { ${fresh.join(', ')} }`);
    }
  }
  const text = out.length > 0 ? `${out.join('\n')}\n` : '';
  if (!BATCH_CHARS.test(text)) throw nftBadName('batch text', text.replace(BATCH_CHARS_OK, ''));
  return text;
}

/** Characters allowed in a batch, for reporting the ones that are not. */
const BATCH_CHARS_OK = /[a-z0-9_ .:,;{}@"\n]/g;

function ruleText(t: string, r: RuleSpec): string {
  const comment = `comment "${checkName('comment', ruleComment(r.proto, r.port, r.kind))}"`;
  const dport = `${r.proto} dport ${port(r.port)}`;
  const set = (f: Family) => `@${checkName('set', setName(r.proto, r.port, f))}`;
  switch (r.kind) {
    case 'v4':
      return `insert rule ${t} ${CHAIN} ip saddr ${set(4)} ${dport} accept ${comment}`;
    case 'v6':
      return `insert rule ${t} ${CHAIN} ip6 saddr ${set(6)} ${dport} accept ${comment}`;
    case 'drop':
      return `add rule ${t} ${CHAIN} ${dport} drop ${comment}`;
  }
}

/** Canonical addresses (addr.ts) are hex digits, dots and colons, and short. */
const ADDR = /^[0-9a-f.:]{2,45}$/;

function addr(ip: string): string {
  if (!ADDR.test(ip)) throw nftBadName('address', ip);
  return ip;
}

function port(p: number): number {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw nftBadName('port', p);
  return p;
}

function handle(h: number): number {
  if (!Number.isSafeInteger(h) || h < 1) throw nftBadName('rule handle', h);
  return h;
}

/** A timeout in ms as nft time text (at least 1 ms). */
function timeout(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 1) throw nftBadName('timeout', ms);
  return `${ms}ms`;
}

/**
 * The periodic cheap check: a batch for `nft -c` (never committed) that
 * deletes our rules by handle, our sets and our chain. It passes only if
 * they all still exist, and the chain holds nothing else; it costs ~10 ms
 * whatever the set sizes, where any `nft list` reads every element first.
 */
export function renderProbe(
  table: string,
  rules: readonly number[],
  sets: readonly string[],
): string {
  const b = emptyBatch();
  b.deleteRules = [...rules];
  b.deleteSets = sets.map((name) => ({ name, map: false }));
  const text = render(b, table);
  return `${text}delete chain inet ${checkName('table', table)} ${CHAIN}\n`;
}
