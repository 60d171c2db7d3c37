/**
 * Human output of the CLI commands (`--json` bypasses this). Plain text,
 * fixed columns, fits 80 columns; anything without a renderer is printed as
 * indented JSON.
 */
import type { MeshSummary } from '../runtime/protocol/admin.js';
import {
  safe,
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
      return `${r.token}\n\nrights ${r.rights.join(',') || '-'}, expires ${new Date(r.expires).toISOString()}${r.for ? `, only for ${r.for}` : ''}\non the new node: meshnode join <token>\n`;
    }
    case 'join': {
      const r = result as { mesh: string; inviter: string; rights: string[] };
      return `joined mesh ${r.mesh}\ninvited by ${r.inviter}, rights ${r.rights.join(',') || '-'}\n`;
    }
    case 'expel': {
      const r = result as { cut: number; id: string };
      return `expelled: feed cut at seq ${r.cut} (entry ${r.id.slice(0, 12)})\n`;
    }
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
      return `${JSON.stringify(result, null, 2)}\n`;
  }
}

interface StatusResult {
  version?: string;
  did?: string | null;
  firewall?: { backend: string; enforced: boolean } | null;
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
    `meshnode ${s.version ?? '?'}, pid ${s.pid}, up ${Math.round(s.uptime)} s`,
    `node ${s.did ?? '(journal down)'}`,
  ];
  if (s.firewall) {
    lines.push(
      s.firewall.enforced
        ? `firewall nft: grants enforced`
        : `firewall ${s.firewall.backend}: NOTHING ENFORCED (grants kept in memory only)`,
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
