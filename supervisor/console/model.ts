/**
 * The console's state and everything that changes it except the terminal:
 * what the admin API answered (as the console reads it: only the fields it
 * shows), the message rate over a sliding window, sorting, and the journal
 * tail it follows for feed times and subscriptions waiting for approval.
 *
 * The state is one plain object that these functions update in place; the
 * screen is drawn from it by render.ts, a pure function, so both are unit
 * tested without a terminal or a node.
 */
import type { MemberRow, NodeRow, ServiceRow } from '../../runtime/protocol/journal.js';
import type { GrantsAnswer } from '../../runtime/protocol/grants.js';
import { shortDid } from './cells.js';
import type { InspectAnswer } from '../admin.js';

/** One row of the admin `actors` answer: supervision info and live stats. */
export interface ActorRow {
  name: string;
  state: string;
  restarts: number;
  startedAt: number | null;
  lastExit: { code: number; reason: string; abnormal: boolean; at: number } | null;
  stats: {
    handled: number;
    depth: number;
    heapUsed: number;
    latency: { count: number; p99Us: number };
    lastError?: { code: string; message: string };
  } | null;
}

export interface PeerRow {
  did: string | null;
  address: string;
  direction: string;
  state: string;
  score: number;
  /** Per feed: the peer's head minus ours (positive: the peer holds entries we lack). */
  lag: Record<string, number>;
}

/** The admin `peers` answer (gossip's describe()). */
export interface PeersResult {
  did: string;
  listening: number | null;
  peers: PeerRow[];
  dialing: Array<{ url: string; did: string | null; attempt: number }>;
  bans: Array<{ did: string; until: number; count: number; reason: string }>;
  frozen: string[];
}

/** The admin `grants` answer, as the console reads it (it shows no grant time). */
export interface GrantsResult {
  live: GrantsAnswer['live'];
  activations: Array<Omit<GrantsAnswer['activations'][number], 'at'>>;
}

/** One record of the admin `trace` answer. */
export interface TraceRow {
  at: number;
  from: string;
  action: string;
  kind: string;
  us: number;
  outcome: string;
}

/** One record of the admin `journal.tail` answer. */
export interface TailRecord {
  arrival: number;
  id: string;
  entry: { author: string; seq: number; ts: number; kind: string; body: unknown };
}

export type Pane = 'peers' | 'feeds' | 'grants' | 'trace' | 'directory' | 'members';
export const PANES: readonly Pane[] = ['peers', 'feeds', 'grants', 'trace', 'directory', 'members'];

/** The directory pane's rows (journal `catalog` pages; the first page of each is enough on a screen). */
export interface DirectoryResult {
  nodes: Array<Pick<NodeRow, 'did' | 'name' | 'gossip' | 'meshIp' | 'version' | 'self'>>;
  services: Array<
    Pick<
      ServiceRow,
      'provider' | 'providerName' | 'service' | 'port' | 'proto' | 'mode' | 'subscription'
    >
  >;
  more: { nodes: boolean; services: boolean };
}

export interface MembersResult {
  mesh: { id: string | null; name: string | null; admission: string; known: boolean };
  rows: Array<Pick<MemberRow, 'did' | 'name' | 'rights' | 'invitedBy' | 'expelled'>>;
}

/** The actors table's columns, left to right: the order `<` and `>` step through. */
export const SORT_KEYS = [
  'name',
  'state',
  'uptime',
  'restarts',
  'mailbox',
  'rate',
  'p99',
  'heap',
  'error',
] as const;
export type SortKey = (typeof SORT_KEYS)[number];
/** Columns an operator sorts to find the biggest first. */
const DESCENDING_FIRST: ReadonlySet<SortKey> = new Set([
  'uptime',
  'restarts',
  'mailbox',
  'rate',
  'p99',
  'heap',
]);

/** msgs/s is the handled count's growth over this much time. */
export const RATE_WINDOW_MS = 10_000;

/** A subscription to one of our services with no approval seen yet. */
export interface PendingSubscription {
  id: string;
  subscriber: string;
  service: string;
  ts: number;
}

export interface TraceState {
  actor: string;
  count: number;
  ms: number;
  startedAt: number;
  records: TraceRow[];
  done: boolean;
  error: string | null;
}

/** What a confirmation (y/N) prompt carries out on y. */
export type Confirmable =
  | { type: 'restart' | 'kill'; actor: string }
  | { type: 'approve'; subscription: string }
  | { type: 'revoke'; target: string };

export type Prompt =
  | { kind: 'confirm'; text: string; action: Confirmable }
  | { kind: 'input'; text: string; value: string; purpose: 'approve' | 'revoke' | 'trace' };

/** The admin `inspect` answer (supervisor/admin.ts), as the inspect view reads it. */
export type InspectResult = InspectAnswer;

/** The inspect view of one actor (Enter on the table; Esc closes it). */
export interface InspectView {
  actor: string;
  result: InspectResult | null;
  error: string | null;
  at: number;
}

/** A row of the grants pane an operator can pick ([ and ]) to approve or revoke. */
export type GrantPick =
  | { kind: 'grant'; id: string; what: string }
  | { kind: 'activation'; id: string; what: string }
  | { kind: 'pending'; id: string; what: string };

export interface ConsoleState {
  socket: string;
  connected: boolean;
  /** Whether the node was ever reached (the first screen says "connecting", not "not running"). */
  everConnected: boolean;
  node: { pid: number; uptime: number; at: number } | null;
  journal: { did: string; entries: number; feeds: number } | null;
  actors: ActorRow[];
  /** Per actor: handled-count samples inside the rate window, for the instance that made them. */
  windows: Record<string, { startedAt: number | null; samples: Array<[number, number]> }>;
  sort: { key: SortKey | null; desc: boolean };
  selected: string | null;
  pane: Pane;
  peers: PeersResult | null;
  heads: Record<string, number>;
  /** Newest entry time seen per author (from the tail the console follows). */
  lastTs: Record<string, number>;
  /** Arrival number of the last tail record read; null until the first read. */
  tailCursor: number | null;
  pending: PendingSubscription[];
  /** Entry ids seen recently (newest last): what a prefix typed at a prompt resolves against. */
  recentIds: string[];
  grants: GrantsResult | null;
  directory: DirectoryResult | null;
  members: MembersResult | null;
  trace: TraceState | null;
  prompt: Prompt | null;
  message: { text: string; error: boolean; at: number } | null;
  /** The ? screen is open. */
  help: boolean;
  inspect: InspectView | null;
  /** The picked row of the grants pane (an index into grantPicks), or null. */
  pick: number | null;
}

/** Pending subscriptions and recent ids are bounded: the console must not grow with the journal. */
const MAX_PENDING = 500;
const MAX_RECENT_IDS = 5000;

export function initialState(socket: string): ConsoleState {
  return {
    socket,
    connected: false,
    everConnected: false,
    node: null,
    journal: null,
    actors: [],
    windows: {},
    sort: { key: null, desc: false },
    selected: null,
    pane: 'peers',
    peers: null,
    heads: {},
    lastTs: {},
    tailCursor: null,
    pending: [],
    recentIds: [],
    grants: null,
    directory: null,
    members: null,
    trace: null,
    prompt: null,
    message: null,
    help: false,
    inspect: null,
    pick: null,
  };
}

/**
 * The grants pane's rows in the order it shows them, each with what `a` or
 * `v` would act on: a live grant (revoke the grant), an activation of ours
 * (revoke our subscription), a subscription waiting for us (approve it, or
 * revoke it).
 */
export function grantPicks(state: ConsoleState): GrantPick[] {
  // Peers wrote the names: short, so the question fits the prompt line (render.ts sanitises).
  const name = (s: string) => (s.length > 24 ? `${s.slice(0, 23)}~` : s);
  const out: GrantPick[] = [];
  for (const g of state.grants?.live ?? [])
    out.push({
      kind: 'grant',
      id: g.grant,
      what: `grant of ${name(g.service)} to ${shortDid(g.subscriber)}`,
    });
  for (const a of state.grants?.activations ?? [])
    out.push({
      kind: 'activation',
      id: a.subscription,
      what: `our subscription to ${name(a.service)} of ${shortDid(a.provider)}`,
    });
  for (const p of state.pending)
    out.push({
      kind: 'pending',
      id: p.id,
      what: `${shortDid(p.subscriber)}'s subscription to ${name(p.service)}`,
    });
  return out;
}

/** The picked row, if it still exists (rows come and go with every poll). */
export function pickedRow(state: ConsoleState): GrantPick | undefined {
  return state.pick === null ? undefined : grantPicks(state)[state.pick];
}

/** Move the pick down (+1) or up (-1) the grants pane's rows; off the top, no pick. */
export function movePick(state: ConsoleState, step: 1 | -1): void {
  const n = grantPicks(state).length;
  if (n === 0) {
    state.pick = null;
    return;
  }
  const next = state.pick === null ? (step === 1 ? 0 : n - 1) : state.pick + step;
  state.pick = next < 0 ? null : Math.min(n - 1, next);
}

/** A fresh `actors` answer: rows replace the old ones; each actor's rate window takes a sample. */
export function applyActors(state: ConsoleState, rows: ActorRow[], now: number): void {
  state.actors = rows;
  for (const row of rows) {
    const handled = row.stats?.handled;
    let w = state.windows[row.name];
    // A new instance counts from zero: its samples do not mix with the old one's.
    if (!w || w.startedAt !== row.startedAt) {
      w = { startedAt: row.startedAt, samples: [] };
      state.windows[row.name] = w;
    }
    if (handled === undefined) continue;
    const last = w.samples[w.samples.length - 1];
    if (last && handled < last[1]) w.samples = [];
    w.samples.push([now, handled]);
    // Keep one sample at or beyond the window's start so the rate spans the whole window.
    while (w.samples.length > 2 && now - w.samples[1]![0] >= RATE_WINDOW_MS) w.samples.shift();
  }
  if (state.selected === null || !rows.some((r) => r.name === state.selected)) {
    state.selected = sortedActors(state, now)[0]?.name ?? null;
  }
}

/** Messages handled per second over the sliding window; null until there are two samples. */
export function rateOf(state: ConsoleState, name: string): number | null {
  const samples = state.windows[name]?.samples ?? [];
  if (samples.length < 2) return null;
  const [t0, n0] = samples[0]!;
  const [t1, n1] = samples[samples.length - 1]!;
  return t1 > t0 ? ((n1 - n0) * 1000) / (t1 - t0) : null;
}

/** What the LAST ERROR column shows: the running instance's last handler error, else an abnormal exit. */
export function lastErrorOf(row: ActorRow): string {
  if (row.stats?.lastError) return `${row.stats.lastError.code}: ${row.stats.lastError.message}`;
  if (row.lastExit?.abnormal) return `exit: ${row.lastExit.reason}`;
  return '';
}

function sortValue(state: ConsoleState, row: ActorRow, key: SortKey, now: number): number | string {
  switch (key) {
    case 'name':
      return row.name;
    case 'state':
      return row.state;
    case 'uptime':
      return row.startedAt === null || row.state !== 'running' ? -1 : now - row.startedAt;
    case 'restarts':
      return row.restarts;
    case 'mailbox':
      return row.stats?.depth ?? -1;
    case 'rate':
      return rateOf(state, row.name) ?? -1;
    case 'p99':
      return row.stats?.latency.count ? row.stats.latency.p99Us : -1;
    case 'heap':
      return row.stats?.heapUsed ?? -1;
    case 'error':
      return lastErrorOf(row);
  }
}

/** The actors in table order: by the sort column (ties, and no column, in start order). */
export function sortedActors(state: ConsoleState, now: number): ActorRow[] {
  const { key, desc } = state.sort;
  const indexed = state.actors.map((row, i) => ({ row, i }));
  if (key !== null) {
    indexed.sort((a, b) => {
      const va = sortValue(state, a.row, key, now);
      const vb = sortValue(state, b.row, key, now);
      const c =
        typeof va === 'number' && typeof vb === 'number'
          ? va - vb
          : String(va).localeCompare(String(vb));
      return c !== 0 ? (desc ? -c : c) : a.i - b.i;
    });
  }
  return indexed.map((x) => x.row);
}

/** Step the sort column left (-1) or right (+1); from "start order" either way enters the table. */
export function stepSort(state: ConsoleState, step: -1 | 1): void {
  const i =
    state.sort.key === null
      ? step === 1
        ? -1
        : SORT_KEYS.length
      : SORT_KEYS.indexOf(state.sort.key);
  const next = i + step;
  if (next < 0 || next >= SORT_KEYS.length) {
    state.sort = { key: null, desc: false };
    return;
  }
  const key = SORT_KEYS[next]!;
  state.sort = { key, desc: DESCENDING_FIRST.has(key) };
}

export function invertSort(state: ConsoleState): void {
  if (state.sort.key !== null) state.sort.desc = !state.sort.desc;
}

/** Move the selection up or down the table as it is shown. */
export function moveSelection(state: ConsoleState, step: number, now: number): void {
  const rows = sortedActors(state, now);
  if (rows.length === 0) return;
  const i = rows.findIndex((r) => r.name === state.selected);
  const next = Math.min(rows.length - 1, Math.max(0, (i < 0 ? 0 : i) + step));
  state.selected = rows[next]!.name;
}

/**
 * Tail records in arrival order: newest entry time per author, subscriptions
 * to us that wait for approval, and recent ids for prompts. `me` is this
 * node's DID (subscriptions name it as provider; approvals are its own).
 */
export function applyTail(state: ConsoleState, records: TailRecord[], me: string): void {
  for (const { arrival, id, entry } of records) {
    state.tailCursor = Math.max(state.tailCursor ?? 0, arrival);
    state.lastTs[entry.author] = Math.max(state.lastTs[entry.author] ?? 0, entry.ts);
    state.recentIds.push(id);
    const body = (entry.body ?? {}) as Record<string, unknown>;
    if (entry.kind === 'subscribe' && body.provider === me && me !== '') {
      state.pending.push({
        id,
        subscriber: entry.author,
        service: String(body.service ?? ''),
        ts: entry.ts,
      });
    } else if ((entry.kind === 'approve' && entry.author === me) || entry.kind === 'revoke') {
      const target = String(body.subscription ?? body.target ?? '');
      state.pending = state.pending.filter((p) => p.id !== target);
    }
  }
  if (state.pending.length > MAX_PENDING) state.pending = state.pending.slice(-MAX_PENDING);
  if (state.recentIds.length > MAX_RECENT_IDS)
    state.recentIds = state.recentIds.slice(-MAX_RECENT_IDS);
}

/**
 * The entry id an operator meant: a full id as typed, or the one id the
 * console has seen (grants, activations, waiting subscriptions, the tail)
 * that starts with the typed prefix. Ids on screen are shortened, so a
 * prefix is what an operator copies.
 */
export function resolveId(state: ConsoleState, typed: string): { id: string } | { error: string } {
  const text = typed.trim().toLowerCase();
  if (/^[0-9a-f]{64}$/.test(text)) return { id: text };
  if (!/^[0-9a-f]{4,63}$/.test(text))
    return { error: 'an entry id is 64 hex digits (or a unique prefix of at least 4)' };
  const known = new Set<string>(state.recentIds);
  for (const g of state.grants?.live ?? []) known.add(g.grant).add(g.subscription);
  for (const a of state.grants?.activations ?? []) known.add(a.grant).add(a.subscription);
  for (const p of state.pending) known.add(p.id);
  const matches = [...known].filter((id) => id.startsWith(text));
  if (matches.length === 1) return { id: matches[0]! };
  return {
    error:
      matches.length === 0
        ? `no entry id the console has seen starts with ${text}`
        : `${matches.length} entry ids start with ${text}; type more of it`,
  };
}

/** "count seconds" as typed at the trace prompt; empty parts take the defaults. */
export function parseTraceInput(
  typed: string,
  defaults: { count: number; ms: number },
): { count: number; ms: number } | { error: string } {
  const parts = typed.trim().split(/\s+/).filter(Boolean);
  if (parts.length > 2) return { error: 'trace takes a count and a number of seconds' };
  const count = parts[0] === undefined ? defaults.count : Number(parts[0]);
  const ms = parts[1] === undefined ? defaults.ms : Math.round(Number(parts[1]) * 1000);
  if (!Number.isInteger(count) || count < 1 || count > 10_000)
    return { error: 'count must be a whole number from 1 to 10000' };
  if (!Number.isFinite(ms) || ms < 1 || ms > 600_000)
    return { error: 'seconds must be more than 0 and at most 600' };
  return { count, ms };
}

export function say(state: ConsoleState, text: string, now: number, error = false): void {
  state.message = { text, error, at: now };
}
