/**
 * Human output of the node's operating verbs: peers, grants, the journal,
 * the firewall, the audit logs, actors. One style with the directory's
 * tables (cli-format.ts): upper-case headers, 12-digit ids, local clock
 * times and "ago"/"in", and every string a peer wrote passed through
 * `safe` (a DID, a service name, a close reason, an entry body).
 */
import type { Activation, LiveGrant } from '../runtime/protocol/grants.js';
import type { GossipStatus } from '../runtime/protocol/gossip.js';
import type { ListResult, PlanResult, ReconcileResult } from '../runtime/protocol/nft.js';
import type { TraceRecord } from '../runtime/types.js';
import type { InspectAnswer } from './admin.js';
import { megabytes, micros } from './console/cells.js';
import { ago, clock, fields, inTime, safe, shortDid, shortId, table } from './cli-format.js';

/** One `journal tail` row as the admin API answers it. */
export interface TailRow {
  arrival: number;
  id: string;
  entry: { author: string; seq: number; ts: number; kind: string; body: Record<string, unknown> };
}

/** Widths fixed (not fitted to the rows), so `-f` lines up under one header. */
const TAIL_COLUMNS = [7, 19, 21, 6, 12, 10] as const;
const TAIL_TITLES = ['ARRIVAL', 'TIME', 'AUTHOR', 'SEQ', 'ID', 'KIND'];
/** Body fields that hold a time in ms since the epoch (the journal's bodies name them so). */
const TIME_FIELD = /(At|^ts|^until|^expires|^from)$/;
/** An entry body shown on one line is cut here; `--json` has it whole. */
const BODY_WIDTH = 100;

export const TAIL_HEAD = `${tailCells(TAIL_TITLES)}  BODY\n`;

export function tailRow(r: TailRow): string {
  return `${tailCells([
    String(r.arrival),
    clock(r.entry.ts),
    shortDid(r.entry.author),
    String(r.entry.seq),
    shortId(r.id),
    safe(r.entry.kind, 10),
  ])}  ${safe(bodyLine(r.entry.body), BODY_WIDTH)}\n`;
}

export function renderTail(rows: TailRow[]): string {
  return rows.length === 0 ? 'no entries yet\n' : TAIL_HEAD + rows.map(tailRow).join('');
}

/** `offer`, `subscribe`, `approve`, `revoke`, `journal forceSelfHead`'s append: what was written. */
export function renderAppended(verb: string, r: { id: string; seq: number; ts: number }): string {
  return `${verb}: entry ${shortId(r.id)} (seq ${r.seq}, ${clock(r.ts)})\n`;
}

export function renderActivation(a: Activation): string {
  return fields([
    ['endpoint', `${safe(a.endpoint.ip, 39)}:${a.endpoint.port}/${a.endpoint.proto}`],
    ['provider', shortDid(a.provider)],
    ['service', safe(a.service, 32)],
    ['lease', `until ${clock(a.expires)} (${inTime(a.expires)})`],
    ['grant', shortId(a.grant)],
  ]);
}

export function renderGrants(r: { live: LiveGrant[]; activations: Activation[] }): string {
  const now = Date.now();
  const out: string[] = [];
  out.push(
    r.live.length === 0
      ? 'no live grants to other nodes\n'
      : table(
          ['GRANT', 'SUBSCRIPTION', 'SUBSCRIBER', 'SERVICE', 'SOURCE IP', 'PORT', 'EXPIRES'],
          r.live.map((g) => [
            shortId(g.grant),
            shortId(g.subscription),
            shortDid(g.subscriber),
            safe(g.service, 32),
            safe(g.ip, 39),
            `${g.port}/${g.proto}`,
            inTime(g.expires, now),
          ]),
        ),
  );
  out.push(
    r.activations.length === 0
      ? 'no activations (access this node was granted elsewhere)\n'
      : table(
          ['SUBSCRIPTION', 'PROVIDER', 'SERVICE', 'ENDPOINT', 'STATE', 'EXPIRES'],
          r.activations.map((a) => [
            shortId(a.subscription),
            shortDid(a.provider),
            safe(a.service, 32),
            `${safe(a.endpoint.ip, 39)}:${a.endpoint.port}/${a.endpoint.proto}`,
            (a.state ?? 'active') + (a.error ? ` (${safe(a.error.code, 32)})` : ''),
            inTime(a.expires, now),
          ]),
        ),
  );
  return out.join('\n');
}

export function renderPeers(g: GossipStatus | { starting: true }): string {
  if ('starting' in g) return 'gossip is starting\n';
  const now = Date.now();
  const parts = [
    `listening ${g.listening ? `on port ${g.listening}` : 'nowhere'}, ${g.transport === 'plaintext' ? 'PLAINTEXT' : 'TLS 1.3'}, self ${g.selfSynced ? 'synced' : 'NOT synced yet'}\n`,
  ];
  parts.push(
    g.peers.length === 0
      ? 'no links\n'
      : table(
          ['DID', 'ADDRESS', 'DIR', 'STATE', 'UP', 'LAST SEEN', 'SCORE', 'LAG', 'IN', 'OUT'],
          g.peers.map((p) => [
            shortDid(p.did),
            safe(p.address, 47),
            p.direction,
            p.state,
            ago(p.connectedAt, now).replace(' ago', ''),
            ago(p.lastSeen, now),
            String(Math.round(p.score)),
            String(Object.values(p.lag).reduce((a, b) => a + b, 0)),
            megabytes(p.bytesIn),
            megabytes(p.bytesOut),
          ]),
        ),
  );
  if (g.dialing.length > 0) {
    parts.push(
      table(
        ['DIALING', 'DID', 'ATTEMPT', 'FROM', 'LAST CLOSE'],
        g.dialing.map((d) => [
          safe(d.url, 64),
          shortDid(d.did),
          String(d.attempt),
          safe(d.source, 16),
          d.lastClose
            ? `${d.lastClose.code} ${safe(d.lastClose.reason, 40)} ${ago(d.lastClose.at, now)}`
            : '-',
        ]),
      ),
    );
  }
  if (g.bans.length > 0) {
    parts.push(
      table(
        ['BANNED', 'UNTIL', 'TIMES', 'REASON'],
        g.bans.map((b) => [b.did, inTime(b.until, now), String(b.count), safe(b.reason, 60)]),
      ),
    );
  }
  if (g.frozen.length > 0)
    parts.push(`frozen feeds (equivocation): ${g.frozen.map((d) => safe(d, 64)).join(', ')}\n`);
  return parts.join('\n');
}

export function renderVerify(r: {
  ok: boolean;
  feeds: number;
  entries: number;
  author?: string;
  seq?: number;
  code?: string;
  message?: string;
}): string {
  if (r.ok) return `journal ok: ${r.entries} entries in ${r.feeds} feeds verified\n`;
  return `journal BROKEN: ${safe(r.author, 64)} seq ${r.seq}: ${safe(r.code, 40)} ${safe(r.message, 200)}\n(${r.entries} entries in ${r.feeds} feeds checked)\n`;
}

export function renderAudit(r: { admin: AuditAnswer; grants: AuditAnswer }): string {
  const line = (name: string, a: AuditAnswer) =>
    a.ok
      ? `${name.padEnd(6)} ok: ${a.records} records, chain intact (${a.path ?? '?'})`
      : `${name.padEnd(6)} BROKEN${a.line ? ` at line ${a.line}` : ''}: ${safe(a.reason, 200)} (${a.path ?? '?'})`;
  return `${line('admin', r.admin)}\n${line('grants', r.grants)}\n`;
}

interface AuditAnswer {
  ok: boolean;
  path?: string;
  records?: number;
  line?: number;
  reason?: string;
}

export function renderNftList(r: ListResult): string {
  const head = `table inet ${r.table} (${r.backend === 'nft' ? 'nft: enforced by the kernel' : 'memory: NOTHING ENFORCED'})${r.exists ? '' : ', not created yet'}\n`;
  const services =
    r.services.length === 0
      ? 'no services guarded\n'
      : `services guarded: ${r.services.map((s) => `${s.port}/${s.proto}`).join(', ')}\n`;
  const now = Date.now();
  const grants =
    r.grants.length === 0
      ? 'no grants in the kernel\n'
      : table(
          ['SOURCE IP', 'PORT', 'EXPIRES'],
          r.grants.map((g) => [
            safe(g.ip, 39),
            `${g.port}/${g.proto}`,
            g.expiresAt === null ? 'never' : inTime(g.expiresAt, now),
          ]),
        );
  const foreign =
    r.foreign.length > 0
      ? `not ours (the next reconcile removes them): ${r.foreign.map((f) => safe(f, 80)).join('; ')}\n`
      : '';
  return head + services + grants + foreign;
}

export function renderPlan(r: PlanResult): string {
  if (r.elements === 0 && r.batch === '')
    return 'nothing to change: the firewall matches the journal\n';
  return `a reconcile would run (checked by ${r.checkedBy}, ${r.elements} elements):\n${r.batch.endsWith('\n') ? r.batch : `${r.batch}\n`}`;
}

export function renderReconcile(r: ReconcileResult): string {
  if (!r.tx) return `nothing to change: ${r.unchanged} grants already right (${r.ms} ms)\n`;
  return `reconciled in ${r.ms} ms: ${r.added} added, ${r.removed} removed, ${r.refreshed} refreshed, ${r.unchanged} unchanged; rules +${r.rulesAdded} -${r.rulesRemoved}; sets +${r.setsAdded} -${r.setsRemoved}${r.tableCreated ? '; table created' : ''}\n`;
}

export function renderTrace(rows: TraceRecord[]): string {
  if (rows.length === 0) return 'no messages in the time given\n';
  return table(
    ['TIME', 'FROM', 'KIND', 'ACTION', 'TOOK', 'OUTCOME'],
    rows.map((t) => [
      `${clock(t.at).slice(11)}.${String(t.at % 1000).padStart(3, '0')}`,
      t.from,
      t.kind,
      t.action,
      micros(t.us),
      t.outcome,
    ]),
  );
}

export function renderInspect(r: InspectAnswer): string {
  const s = r.supervision;
  const st = r.stats;
  const pairs: Array<[string, string]> = [];
  if (s) {
    pairs.push(
      ['actor', `${s.name} (${s.restart}), ${s.state}, thread ${s.threadId ?? '-'}`],
      ['started', s.startedAt ? `${clock(s.startedAt)} (${ago(s.startedAt)})` : '-'],
      ['restarts', String(s.restarts)],
      ['last exit', s.lastExit ? `${s.lastExit.code} ${safe(s.lastExit.reason, 200)}` : '-'],
    );
  }
  pairs.push(
    ['mailbox', `${st.depth} waiting (high water ${st.highWater})`],
    [
      'messages',
      `${st.received} received, ${st.handled} handled, ${st.rejected} rejected, ${st.deadLetters} dead letters` +
        (st.observed ? ` (and ${st.observed} reads for the console, not counted)` : ''),
    ],
    [
      'latency',
      st.latency.count === 0
        ? '-'
        : `p50 ${micros(st.latency.p50Us)}, p99 ${micros(st.latency.p99Us)}, max ${micros(st.latency.maxUs)}`,
    ],
    ['heap', megabytes(st.heapUsed)],
    ['last error', st.lastError ? `${st.lastError.code}: ${safe(st.lastError.message, 500)}` : '-'],
    [
      'links',
      r.links
        .map((l) => `${l.peer} ${l.state}${l.pending ? ` (${l.pending} pending)` : ''}`)
        .join(', '),
    ],
  );
  for (const [k, v] of Object.entries(st.metrics)) pairs.push([k, String(v)]);
  const state =
    r.state === undefined || r.state === null
      ? ''
      : `\nstate:\n${safe(JSON.stringify(r.state, null, 2), 4000)}\n`;
  return fields(pairs) + state;
}

/** A one-word answer (`restarted`, `killed`, `level`, …) as a sentence. */
export function renderDone(command: string, r: Record<string, unknown>): string {
  switch (command) {
    case 'restart':
      return `restarted ${safe(String(r.restarted))}\n`;
    case 'kill':
      return `killed ${safe(String(r.killed))}; its supervisor restarts it by its policy\n`;
    case 'log-level':
      return `log level ${safe(String(r.level))}\n`;
    case 'stop':
      return 'stopping\n';
    case 'unban':
      return r.unbanned ? 'unbanned\n' : 'not banned: nothing to lift\n';
    case 'undial':
      return r.dropped
        ? 'no longer dialed\n'
        : `not dropped: ${safe(String(r.reason ?? 'unknown'))}\n`;
    case 'journal forceSelfHead':
      return `appending as this node from seq ${String(r.head)} without a peer's confirmation\n`;
    default:
      return `${JSON.stringify(r, null, 2)}\n`;
  }
}

/** An entry body on one line: `key=value` pairs, nested values as JSON, long values cut. */
function bodyLine(body: Record<string, unknown>): string {
  return Object.entries(body ?? {})
    .map(([k, v]) => {
      if (typeof v === 'string') return `${k}=${cut(v)}`;
      // createdAt, expiresAt, until, …: a time, shown as one.
      if (typeof v === 'number' && TIME_FIELD.test(k) && v > 1e12) return `${k}=${clock(v)}`;
      return `${k}=${cut(JSON.stringify(v) ?? '')}`;
    })
    .join(' ');
}

function cut(s: string): string {
  return s.length > 24 ? `${s.slice(0, 23)}…` : s;
}

function tailCells(cells: readonly string[]): string {
  return cells.map((c, i) => c.padEnd(TAIL_COLUMNS[i]!)).join('  ');
}
