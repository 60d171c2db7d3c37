/**
 * Human output of the CLI commands (`--json` bypasses this): every verb
 * has its renderer, in one style (cli-format.ts); the directory's are in
 * cli-directory.ts, the node's operating verbs in cli-render-ops.ts.
 */
import type { MeshSummary } from '../runtime/protocol/admin.js';
import { clock, duration, safe, shortId } from './cli-format.js';
import {
  renderActivation,
  renderAppended,
  renderAudit,
  renderDone,
  renderGrants,
  renderInspect,
  renderNftList,
  renderPeers,
  renderPlan,
  renderReconcile,
  renderTail,
  renderTrace,
  renderVerify,
} from './cli-render-ops.js';
import {
  renderMembers,
  renderMembership,
  renderNodes,
  renderServices,
  renderSubscriptions,
} from './cli-directory.js';

export function render(command: string, result: unknown): string {
  switch (command) {
    case 'nodes':
      return renderNodes(result as Parameters<typeof renderNodes>[0]);
    case 'services':
      return renderServices(result as Parameters<typeof renderServices>[0]);
    case 'subscriptions':
      return renderSubscriptions(result as Parameters<typeof renderSubscriptions>[0]);
    case 'members':
      return renderMembers(result as Parameters<typeof renderMembers>[0]);
    case 'mesh show':
      return renderMembership(result as Parameters<typeof renderMembership>[0]);
    case 'config check':
      // nginx -t's words: the file, and that it is fine.
      return `meshnode: config ${(result as { file: string }).file} is valid\n`;
    case 'mesh found': {
      const r = result as { mesh: string };
      return `founded mesh ${r.mesh}\ninvite nodes with: meshnode invite\n`;
    }
    case 'invite': {
      const r = result as { token: string; expires: number; rights: string[]; for: string | null };
      return `${r.token}\n\nrights ${r.rights.join(',') || '-'}, expires ${clock(r.expires)}${r.for ? `, only for ${r.for}` : ''}\non the new node: meshnode join <token>\n`;
    }
    case 'join': {
      const r = result as { mesh: string; inviter: string; rights: string[] };
      return `joined mesh ${r.mesh}\ninvited by ${r.inviter}, rights ${r.rights.join(',') || '-'}\n`;
    }
    case 'expel': {
      const r = result as { cut: number; id: string };
      return `expelled: feed cut at seq ${r.cut} (entry ${r.id.slice(0, 12)})\n`;
    }
    case 'offer':
      return renderAppended('offered', result as AppendShape);
    case 'subscribe':
      return `${renderAppended('subscribed', result as AppendShape)}the provider approves it (or its policy does); then: meshnode activate ${shortId((result as AppendShape).id)}\n`;
    case 'approve':
      return renderAppended('approved', result as AppendShape);
    case 'revoke':
      return renderAppended('revoked', result as AppendShape);
    case 'activate':
      return renderActivation(result as Parameters<typeof renderActivation>[0]);
    case 'grants':
      return renderGrants(result as Parameters<typeof renderGrants>[0]);
    case 'peers':
      return renderPeers(result as Parameters<typeof renderPeers>[0]);
    case 'journal tail':
      return renderTail(result as Parameters<typeof renderTail>[0]);
    case 'journal verify':
      return renderVerify(result as Parameters<typeof renderVerify>[0]);
    case 'audit verify':
      return renderAudit(result as Parameters<typeof renderAudit>[0]);
    case 'nft list':
      return renderNftList(result as Parameters<typeof renderNftList>[0]);
    case 'nft plan':
      return renderPlan(result as Parameters<typeof renderPlan>[0]);
    case 'nft reconcile':
      return renderReconcile(result as Parameters<typeof renderReconcile>[0]);
    case 'trace':
      return renderTrace(result as Parameters<typeof renderTrace>[0]);
    case 'inspect':
      return renderInspect(result as Parameters<typeof renderInspect>[0]);
    case 'restart':
    case 'kill':
    case 'log-level':
    case 'stop':
    case 'unban':
    case 'undial':
    case 'journal forceSelfHead':
      return renderDone(command, result as Record<string, unknown>);
    case 'status':
      return renderStatus(result as StatusResult);
    case 'actors':
      return renderActors(result as ActorRow[]);
    case 'init': {
      const r = result as {
        did: string;
        keyFile: string;
        created: boolean;
        newMesh?: { name: string; admission: string };
      };
      const mesh = r.newMesh
        ? `mesh ${r.newMesh.name} (${r.newMesh.admission}) is founded when the node first starts\n`
        : '';
      return `${r.created ? 'created' : 'kept'} ${r.keyFile}\n${r.did}\n${mesh}`;
    }
    default:
      // Every verb has a case above (a unit test walks the table); this is for a newer node's answer.
      return `${JSON.stringify(result, null, 2)}\n`;
  }
}

interface AppendShape {
  id: string;
  seq: number;
  ts: number;
}

interface StatusResult {
  version?: string;
  did?: string | null;
  firewall?: { backend: string; enforced: boolean; why?: string } | null;
  pid: number;
  uptime: number;
  actors: Array<{ name: string; state: string; restarts: number }>;
  gossip?: { transport: string; listening: number } | null;
  mesh?: MeshSummary | null;
  grants?: { anySource: string[] } | null;
}

interface ActorRow {
  name: string;
  state: string;
  restarts: number;
  startedAt: number | null;
  stats: {
    depth: number;
    handled: number;
    heapUsed: number;
    latency: { p99Us: number; count: number };
  } | null;
}

function renderStatus(s: StatusResult): string {
  const lines = [
    `meshnode ${s.version ?? '?'}, pid ${s.pid}, up ${duration(s.uptime * 1000)}`,
    `node ${s.did ?? '(journal down)'}`,
  ];
  if (s.firewall) {
    lines.push(
      s.firewall.enforced
        ? `firewall nft: grants enforced`
        : `firewall ${s.firewall.backend}: NOTHING ENFORCED (grants kept in memory only)${s.firewall.why ? `: ${safe(s.firewall.why, 200)}` : ''}`,
    );
  }
  if (s.gossip) {
    const how = s.gossip.transport === 'plaintext' ? 'PLAINTEXT (insecure_plaintext)' : 'TLS 1.3';
    lines.push(`gossip ${how}${s.gossip.listening ? `, port ${s.gossip.listening}` : ''}`);
  }
  if (s.mesh) {
    if (s.mesh.id === null)
      lines.push('mesh open: no mesh (found one with: meshnode mesh found NAME)');
    else if (!s.mesh.known) lines.push(`mesh ${s.mesh.id.slice(0, 12)}, not synced yet`);
    else
      lines.push(
        `mesh ${safe(s.mesh.name, 32)} ${s.mesh.id.slice(0, 12)}, ${s.mesh.admission}, ${s.mesh.members} members${s.mesh.expelled ? `, ${s.mesh.expelled} expelled` : ''}`,
      );
  }
  if (s.grants && s.grants.anySource.length > 0) {
    lines.push(
      `grants to any source (no record IP check) for: ${s.grants.anySource.map((x) => safe(x, 32)).join(', ')}`,
    );
  }
  for (const a of s.actors)
    lines.push(`  ${a.name.padEnd(12)} ${a.state.padEnd(10)} restarts ${a.restarts}`);
  return `${lines.join('\n')}\n`;
}

function renderActors(rows: ActorRow[]): string {
  const head = `${'ACTOR'.padEnd(12)} ${'STATE'.padEnd(10)} ${'RESTARTS'.padStart(8)} ${'MAILBOX'.padStart(8)} ${'HANDLED'.padStart(10)} ${'P99 µs'.padStart(8)} ${'HEAP MB'.padStart(8)}`;
  const lines = rows.map((r) =>
    [
      r.name.padEnd(12),
      r.state.padEnd(10),
      String(r.restarts).padStart(8),
      String(r.stats?.depth ?? '-').padStart(8),
      String(r.stats?.handled ?? '-').padStart(10),
      String(r.stats?.latency.count ? Math.round(r.stats.latency.p99Us) : '-').padStart(8),
      (r.stats ? (r.stats.heapUsed / 1048576).toFixed(1) : '-').padStart(8),
    ].join(' '),
  );
  return `${[head, ...lines].join('\n')}\n`;
}
