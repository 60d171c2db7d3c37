/**
 * The directory commands of the CLI (`nodes`, `services`, `subscriptions`,
 * `members`, `mesh show`, `invite`, `join`, `expel`): merging what two
 * actors know, resolving a member by name, and the human tables. Every
 * string in these rows was written by some peer: `safe` strips what a
 * terminal would interpret (escapes, control and bidi characters) before
 * it is printed; `--json` prints them as JSON strings, escaped.
 */
import { E } from '../runtime/errors.js';
import type {
  CatalogPage,
  MemberRow,
  NodeRow,
  ServiceRow,
  SubscriptionRow,
} from '../runtime/protocol/journal.js';

/** C0/C1 controls, DEL, and the bidi overrides and isolates: nothing a peer may send to a terminal. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export function safe(text: string | null | undefined, max = 64): string {
  if (text === null || text === undefined) return '-';
  const clean = text.replace(UNSAFE, '?');
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

export type NodesPage = CatalogPage<NodeRow>;

export interface PeersAnswer {
  peers?: Array<{
    did: string | null;
    state: string;
    lastSeen: number;
    lag: Record<string, number>;
  }>;
}

export type NodeWithLink = NodesPage['rows'][number] & {
  connected: boolean;
  lastSeen: number | null;
  lag: number | null;
};

/** The journal's node rows with gossip's view of each: linked or not, last heard, entries behind. */
export function withLinks(
  nodes: NodesPage,
  peers: PeersAnswer | null,
): { rows: NodeWithLink[]; next: string | null } {
  const byDid = new Map<string, NonNullable<PeersAnswer['peers']>[number]>();
  for (const p of peers?.peers ?? []) if (p.did && p.state === 'open') byDid.set(p.did, p);
  return {
    rows: nodes.rows.map((n) => {
      const p = byDid.get(n.did);
      const lag = p ? Object.values(p.lag).reduce((a, b) => a + b, 0) : null;
      return { ...n, connected: p !== undefined, lastSeen: p?.lastSeen ?? null, lag };
    }),
    next: nodes.next,
  };
}

/** A member by full DID, unique DID prefix, or unique name; refused with the candidates otherwise. */
export function pickMember(
  rows: ReadonlyArray<{ did: string; name: string | null; expelled: unknown }>,
  who: string,
): string {
  if (/^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$/.test(who)) return who;
  const current = rows.filter((r) => r.expelled === null);
  let found = current.filter((r) => r.name === who);
  if (found.length === 0 && who.startsWith('did:key:') && who.length >= 16) {
    found = current.filter((r) => r.did.startsWith(who));
  }
  if (found.length === 1) return found[0]!.did;
  if (found.length === 0) throw E.ERR_NOT_FOUND(`no member named ${JSON.stringify(who)}`);
  throw E.ERR_AMBIGUOUS(
    `${JSON.stringify(who)} names ${found.length} members: ${found.map((r) => r.did).join(', ')}`,
  );
}

// --- tables --------------------------------------------------------------------

/** Fixed columns, each padded to its widest cell. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${[line(head), ...rows.map(line)].join('\n')}\n`;
}

/** A DID as a table shows it: did:key:z6Mk + the first 8 characters after it. */
export function shortDid(did: string | null): string {
  if (!did) return '-';
  return did.length > 20 ? `${did.slice(0, 20)}…` : did;
}

function ago(ms: number | null): string {
  if (ms === null || ms === 0) return '-';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172_800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86_400)}d ago`;
}

function more(next: string | null): string {
  return next ? `more: --after ${safe(next, 80)}\n` : '';
}

export function renderNodes(r: { rows: NodeWithLink[]; next: string | null }): string {
  if (r.rows.length === 0) return 'no nodes in the directory yet\n';
  const rows = r.rows.map((n) => [
    safe(n.name, 32) + (n.self ? ' (this node)' : ''),
    shortDid(n.did),
    safe(n.gossip),
    safe(n.meshIp, 39),
    safe(n.version, 16),
    n.self ? '-' : n.connected ? 'connected' : 'no link',
    n.self ? '-' : ago(n.lastSeen),
    n.lag === null ? '-' : String(n.lag),
  ]);
  return (
    table(['NAME', 'DID', 'ENDPOINT', 'MESH IP', 'VERSION', 'LINK', 'LAST SEEN', 'LAG'], rows) +
    more(r.next)
  );
}

export function renderServices(r: { rows: ServiceRow[]; next: string | null }): string {
  if (r.rows.length === 0) return 'no services offered in the mesh\n';
  const rows = r.rows.map((s) => [
    safe(s.providerName, 32),
    shortDid(s.provider),
    safe(s.service, 32),
    `${s.port}/${s.proto}`,
    s.mode + (s.anySource ? ',any-source' : ''),
    `${s.leaseSeconds}s`,
    s.subscription ? `${s.subscription.state} ${s.subscription.id.slice(0, 12)}` : '-',
  ]);
  return (
    table(['PROVIDER', 'DID', 'SERVICE', 'PORT', 'MODE', 'LEASE', 'MY SUBSCRIPTION'], rows) +
    more(r.next)
  );
}

export function renderSubscriptions(r: { rows: SubscriptionRow[]; next: string | null }): string {
  if (r.rows.length === 0) return 'no subscriptions of or to this node\n';
  const rows = r.rows.map((s) => [
    s.id.slice(0, 12),
    s.direction,
    safe(s.direction === 'mine' ? s.providerName : s.subscriberName, 32),
    shortDid(s.direction === 'mine' ? s.provider : s.subscriber),
    safe(s.service, 32),
    s.state,
  ]);
  return table(['ID', 'DIRECTION', 'PEER', 'DID', 'SERVICE', 'STATE'], rows) + more(r.next);
}

export function renderMembers(r: { rows: MemberRow[] }): string {
  if (r.rows.length === 0)
    return 'no members: this node belongs to no mesh (or has not synced it)\n';
  const rows = r.rows.map((m) => [
    safe(m.name, 32),
    m.did,
    m.expelled ? `expelled (cut at ${m.expelled.cut})` : m.rights.join(',') || '-',
    m.expelled ? shortDid(m.expelled.by) : m.invitedBy ? safe(m.invitedByName) : 'founder',
  ]);
  return table(['NAME', 'DID', 'RIGHTS', 'INVITED BY'], rows);
}

export function renderMembership(m: {
  mesh: string | null;
  known: boolean;
  name: string | null;
  admission: string;
  founder: string | null;
  members: unknown[];
  cuts: unknown[];
}): string {
  if (m.mesh === null) {
    return 'open: no mesh (any node that proves its key is admitted); found one with: meshnode mesh found NAME\n';
  }
  if (!m.known) return `mesh ${m.mesh}\nnot synced yet: its founding entry has not arrived\n`;
  return (
    [
      `mesh ${safe(m.name, 32)} ${m.mesh}`,
      `admission ${m.admission}`,
      `founder ${m.founder}`,
      `members ${m.members.length}, expelled ${m.cuts.length}`,
    ].join('\n') + '\n'
  );
}
