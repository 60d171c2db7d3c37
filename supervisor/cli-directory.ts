/**
 * The directory commands of the CLI (`nodes`, `services`, `subscriptions`,
 * `members`, `mesh show`, `invite`, `join`, `expel`): merging what two
 * actors know, resolving a member by name, and the human tables. Every
 * string in these rows was written by some peer: `safe` (cli-format.ts)
 * strips what a terminal would interpret before it is printed; `--json`
 * prints them as JSON strings, escaped.
 */
import { E } from '../runtime/errors.js';
import { ago, safe, shortDid, table } from './cli-format.js';
import type {
  MemberRow,
  NodesPage,
  ServiceRow,
  SubscriptionRow,
} from '../runtime/protocol/journal.js';

export type { NodesPage };

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
): { rows: NodeWithLink[]; next: string | null; selfRecord: boolean } {
  const byDid = new Map<string, NonNullable<PeersAnswer['peers']>[number]>();
  for (const p of peers?.peers ?? []) if (p.did && p.state === 'open') byDid.set(p.did, p);
  return {
    rows: nodes.rows.map((n) => {
      const p = byDid.get(n.did);
      const lag = p ? Object.values(p.lag).reduce((a, b) => a + b, 0) : null;
      return { ...n, connected: p !== undefined, lastSeen: p?.lastSeen ?? null, lag };
    }),
    next: nodes.next,
    selfRecord: nodes.selfRecord,
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

function more(next: string | null): string {
  return next ? `more: --after ${safe(next, 80)}\n` : '';
}

export function renderNodes(r: {
  rows: NodeWithLink[];
  next: string | null;
  selfRecord?: boolean;
}): string {
  // Said on every page: the node itself is in none of them without a record.
  const hint =
    r.selfRecord === false
      ? 'this node has no record: peers cannot list or dial it (set gossip.advertise, and node.mesh_ip)\n'
      : '';
  if (r.rows.length === 0) return `no nodes in the directory yet\n${hint}`;
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
    more(r.next) +
    hint
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
