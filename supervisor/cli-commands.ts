/**
 * What each `meshnode` verb is: its usage line, what it does, its options
 * (with their defaults and valid values, which `--help` prints and the
 * parser enforces), examples, and the admin request it makes. The parsing
 * and printing live in commands.ts; this is the table it reads.
 */
import { E } from '../runtime/errors.js';
import { pickMember, withLinks } from './cli-directory.js';
import { BUILTIN_ACTORS } from './config-specs.js';
import type { NodesPage, PeersAnswer } from './cli-directory.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** The value's name in help (`--port N`). */
  arg?: string;
  help: string;
  /** Applied before the request is built; shown in help. */
  default?: string;
  /** The only values accepted (a usage error lists them). */
  values?: readonly string[];
  /** A whole number (`--port`, `--limit`): anything else is a usage error, not a request the node refuses. */
  numeric?: boolean;
  /** A duration like 90s, 30m, 24h, 7d. */
  duration?: boolean;
  required?: boolean;
}

export type Values = Record<string, string | boolean | undefined>;
export type Call = (method: string, params: Record<string, unknown>) => Promise<unknown>;

export interface Command {
  usage: string;
  summary: string;
  options?: Record<string, OptionSpec>;
  /** Positional argument names, all required. */
  args?: string[];
  examples?: string[];
  /** Build the admin request; absent for commands that do not talk to a node. */
  request?: (args: string[], values: Values) => [string, Record<string, unknown>];
  /** A command that needs more than one call (it gets the connected client). */
  run?: (call: Call, args: string[], values: Values) => Promise<unknown>;
  /** Takes --watch (re-run and redraw every --interval, like watch(1)). */
  watch?: boolean;
}

/** Paging options of the catalog commands. */
const paging = (key: string): Record<string, OptionSpec> => ({
  limit: { type: 'string', arg: 'N', help: 'rows per page', default: '1000', numeric: true },
  after: { type: 'string', arg: key, help: 'the page after this row (the "more:" line says)' },
});

function page(what: string, v: Values): Record<string, unknown> {
  return {
    what,
    limit: Number(v.limit),
    ...(typeof v.after === 'string' ? { after: v.after } : {}),
  };
}

/** A duration as admins write them: 90s, 30m, 24h, 7d. */
export const DURATION = /^(\d{1,9})(s|m|h|d)$/;

export function durationMs(text: string): number {
  const m = DURATION.exec(text);
  if (!m) return NaN;
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's']!;
}

const ACTOR_ARG = `ACTOR is one of ${BUILTIN_ACTORS.join(', ')} (see meshnode actors)`;

/** A verb that is one admin method with no params (`nft list`, `audit verify`, …). */
function plain(usage: string, summary: string, method: string): Command {
  return { usage, summary, request: () => [method, {}] };
}

export const COMMANDS: Record<string, Command> = {
  init: {
    usage: 'init [--new-mesh NAME [--open]]',
    summary: 'create the state directory and the node key (0600); found a mesh at first start',
    options: {
      'new-mesh': {
        type: 'string',
        arg: 'NAME',
        help: 'found a mesh named NAME ([a-z][a-z0-9_]*)',
      },
      open: {
        type: 'boolean',
        help: 'the new mesh admits any node (default: closed, invite only)',
      },
    },
    examples: ['meshnode init', 'meshnode init --new-mesh home'],
  },
  start: {
    usage: 'start [--adopt-table]',
    summary: 'run the node in the foreground (what systemd runs)',
    options: {
      'adopt-table': {
        type: 'boolean',
        help: 'manage an existing nft table meshnode did not create (it is marked from then on)',
      },
    },
    examples: ['meshnode start', 'MESHNODE_CONFIG= meshnode start   # the embedded defaults'],
  },
  'config check': {
    usage: 'config check FILE',
    summary: 'validate a config file without starting: every problem at once, exit 2 if any',
    args: ['FILE'],
    examples: ['meshnode config check /etc/meshnode/meshnode.toml'],
  },
  status: {
    usage: 'status [--watch]',
    summary: 'version, DID, firewall, gossip, mesh and actor states',
    request: () => ['status', {}],
    watch: true,
  },
  doctor: {
    usage: 'doctor',
    summary: 'check what the node needs (nft, capabilities, socket, ports, disk, clock, peers)',
  },
  actors: {
    usage: 'actors [--watch]',
    summary: 'actors with mailbox, latency, heap',
    request: () => ['actors', {}],
    watch: true,
  },
  inspect: {
    usage: 'inspect ACTOR',
    summary: "one actor: supervision, mailbox, recent errors in full, the actor's own state",
    args: ['actor'],
    examples: ['meshnode inspect grants'],
    request: ([a]) => ['inspect', { actor: a }],
  },
  restart: {
    usage: 'restart ACTOR',
    summary: `restart one actor (${ACTOR_ARG})`,
    args: ['actor'],
    examples: ['meshnode restart gossip'],
    request: ([a]) => ['restart', { actor: a }],
  },
  kill: {
    usage: 'kill ACTOR',
    summary: 'terminate one actor as a crash would; its supervisor restarts it by its policy',
    args: ['actor'],
    examples: ['meshnode kill nft'],
    request: ([a]) => ['kill', { actor: a }],
  },
  trace: {
    usage: 'trace ACTOR [--count N] [--ms N]',
    summary: 'the next messages an actor handles',
    args: ['actor'],
    options: {
      count: {
        type: 'string',
        arg: 'N',
        help: 'stop after N messages',
        default: '20',
        numeric: true,
      },
      ms: { type: 'string', arg: 'N', help: 'stop after N ms', default: '10000', numeric: true },
    },
    examples: ['meshnode trace grants --count 5'],
    request: ([a], v) => ['trace', { actor: a, count: Number(v.count), ms: Number(v.ms) }],
  },
  'log-level': {
    usage: 'log-level LEVEL',
    summary: 'set the log level of the running node: trace, debug, info, warn, error, fatal',
    args: ['level'],
    examples: ['meshnode log-level debug'],
    request: ([l]) => ['logLevel', { level: l }],
  },
  stop: { usage: 'stop', summary: 'stop the node gracefully', request: () => ['stop', {}] },
  console: {
    usage: 'console',
    summary: 'full-screen live view: actors, peers, feeds, grants, trace (? for help)',
  },

  // --- the mesh directory ---
  'mesh found': {
    usage: 'mesh found NAME [--open]',
    summary: 'found a mesh on this node (closed unless --open)',
    args: ['name'],
    options: { open: { type: 'boolean', help: 'admit any node that proves its key' } },
    examples: ['meshnode mesh found home'],
    request: ([n], v) => ['mesh.found', { name: n, admission: v.open ? 'open' : 'closed' }],
  },
  'mesh show': plain(
    'mesh show',
    'the mesh this node belongs to: id, name, admission, founder, counts',
    'membership',
  ),
  invite: {
    usage: 'invite [--rights R,...] [--expires 24h] [--for DID]',
    summary: 'print a single-use invite token to this mesh',
    options: {
      rights: {
        type: 'string',
        arg: 'R,...',
        help: 'rights offered: member.invite, member.expel, service.offer, config.publish, operator.steer (a subset of yours)',
      },
      expires: {
        type: 'string',
        arg: 'DURATION',
        help: 'how long the token is good',
        default: '24h',
        duration: true,
      },
      for: { type: 'string', arg: 'DID', help: 'only this DID may redeem it' },
    },
    examples: ['meshnode invite', 'meshnode invite --rights service.offer --expires 1h'],
    request: (_a, v) => [
      'invite',
      {
        ...(typeof v.rights === 'string'
          ? {
              rights: v.rights
                .split(',')
                .map((r) => r.trim())
                .filter(Boolean),
            }
          : {}),
        expiresMs: durationMs(v.expires as string),
        ...(typeof v.for === 'string' ? { for: v.for } : {}),
      },
    ],
  },
  join: {
    usage: 'join TOKEN [--timeout 15s]',
    summary: "join a mesh: dial the token's inviter and redeem it",
    args: ['token'],
    options: {
      timeout: {
        type: 'string',
        arg: 'DURATION',
        help: 'give up after',
        default: '15s',
        duration: true,
      },
    },
    examples: ['meshnode join mnv1…'],
    request: ([t], v) => ['join', { token: t, timeoutMs: durationMs(v.timeout as string) }],
  },
  members: {
    usage: 'members',
    summary: 'members of the mesh: rights, who invited whom, who was expelled',
    request: () => ['catalog', { what: 'members' }],
  },
  expel: {
    usage: 'expel DID|NAME',
    summary: 'expel a member: its feed is cut on every node, its links and grants end',
    args: ['member'],
    examples: ['meshnode expel beta'],
    run: async (call, [who]) => {
      const members = (await call('catalog', { what: 'members' })) as {
        rows: Array<{ did: string; name: string | null; expelled: unknown }>;
      };
      return call('expel', { did: pickMember(members.rows, who!) });
    },
  },
  nodes: {
    usage: 'nodes [--limit N] [--after DID]',
    summary: 'nodes of the mesh: name, DID, endpoint, mesh IP, version, link state, lag',
    options: paging('DID'),
    run: async (call, _a, v) => {
      const [nodes, peers] = await Promise.all([
        call('catalog', page('nodes', v)),
        call('peers', {}).catch(() => null),
      ]);
      return withLinks(nodes as NodesPage, peers as PeersAnswer | null);
    },
  },
  services: {
    usage: 'services [--limit N] [--after OFFER]',
    summary: "every offer in the mesh, and this node's subscription to each",
    options: paging('OFFER'),
    request: (_a, v) => ['catalog', page('services', v)],
  },
  subscriptions: {
    usage: 'subscriptions [--limit N] [--after ID]',
    summary: "this node's subscriptions, and others' to its offers, with approval state",
    options: paging('ID'),
    request: (_a, v) => ['catalog', page('subscriptions', v)],
  },
  peers: {
    usage: 'peers [--watch]',
    summary: 'gossip links, endpoints being dialed, bans, frozen feeds',
    request: () => ['peers', {}],
    watch: true,
  },
  unban: {
    usage: 'unban DID',
    summary: 'lift the ban of a gossip peer (a unique DID prefix will do)',
    args: ['did'],
    examples: ['meshnode unban did:key:z6MkpTHR8VNs'],
    run: async (call, [did]) => {
      const peers = (await call('peers', {})) as { bans?: Array<{ did: string }> };
      return call('unban', { did: pickBanned(peers.bans ?? [], did!) });
    },
  },
  undial: {
    usage: 'undial URL',
    summary: "stop dialing an endpoint learnt from a node record (see 'peers')",
    args: ['url'],
    request: ([u]) => ['undial', { url: u }],
  },

  // --- services and grants ---
  offer: {
    usage: 'offer --service NAME --port N [options]',
    summary: 'offer a service of this node to the mesh',
    options: {
      service: {
        type: 'string',
        arg: 'NAME',
        help: 'the service name peers subscribe to',
        required: true,
      },
      port: {
        type: 'string',
        arg: 'N',
        help: 'the local port a grant opens',
        numeric: true,
        required: true,
      },
      proto: {
        type: 'string',
        arg: 'PROTO',
        help: 'protocol',
        default: 'tcp',
        values: ['tcp', 'udp'],
      },
      mode: {
        type: 'string',
        arg: 'MODE',
        help: 'manual: each subscription waits for approve; auto: approved by the policy',
        default: 'manual',
        values: ['manual', 'auto'],
      },
      lease: {
        type: 'string',
        arg: 'SECONDS',
        help: 'how long one grant lasts',
        default: '3600',
        numeric: true,
      },
      'any-source': {
        type: 'boolean',
        help: "grant NATed peers from the address they come from, not their record's mesh IP",
      },
      force: {
        type: 'boolean',
        help: 'even port 22 or a port with live connections (those connections are dropped)',
      },
    },
    examples: [
      'meshnode offer --service web --port 8080',
      'meshnode offer --service dns --port 53 --proto udp --mode auto',
    ],
    request: (_a, v) => [
      'offer',
      {
        service: v.service,
        port: Number(v.port),
        proto: v.proto,
        mode: v.mode,
        leaseSeconds: Number(v.lease),
        ...(v['any-source'] ? { anySource: true } : {}),
        ...(v.force ? { force: true } : {}),
      },
    ],
  },
  subscribe: {
    usage: 'subscribe --provider NAME|DID --service NAME',
    summary: "subscribe to a provider's service (see 'services')",
    options: {
      provider: {
        type: 'string',
        arg: 'NAME|DID',
        help: 'node name, DID or unique DID prefix',
        required: true,
      },
      service: {
        type: 'string',
        arg: 'NAME',
        help: 'a service the provider offers',
        required: true,
      },
    },
    examples: ['meshnode subscribe --provider alpha --service web'],
    request: (_a, v) => ['subscribe', { provider: v.provider, service: v.service }],
  },
  approve: {
    usage: 'approve SUBSCRIPTION',
    summary: 'approve a subscription to one of our services (an id or a unique prefix of 8+)',
    args: ['subscription'],
    examples: ['meshnode approve 3f2a9c01'],
    request: ([s]) => ['approve', { subscription: s }],
  },
  revoke: {
    usage: 'revoke ID',
    summary:
      'revoke an offer, subscription, approval or grant of this node (a prefix of 8+ will do)',
    args: ['target'],
    examples: ['meshnode revoke 3f2a9c01'],
    request: ([t]) => ['revoke', { target: t }],
  },
  activate: {
    usage: 'activate SUBSCRIPTION',
    summary: 'ask the provider for access; prints the endpoint and the lease',
    args: ['subscription'],
    examples: ['meshnode activate 3f2a9c01'],
    request: ([s]) => ['activate', { subscription: s }],
  },
  grants: {
    usage: 'grants [--watch]',
    summary: 'live grants (ours to others) and activations (others to us), with lease countdowns',
    request: () => ['grants', {}],
    watch: true,
  },

  // --- the journal, the firewall, the audit logs ---
  'journal tail': {
    usage: 'journal tail [-n N] [-f] [--after ARRIVAL]',
    summary: 'the newest entries in local arrival order; -f keeps printing new ones',
    options: {
      lines: {
        type: 'string',
        short: 'n',
        arg: 'N',
        help: 'how many entries',
        default: '20',
        numeric: true,
      },
      follow: {
        type: 'boolean',
        short: 'f',
        help: 'then wait for new entries and print them (Ctrl-C ends)',
      },
      after: {
        type: 'string',
        arg: 'ARRIVAL',
        help: 'the entries after arrival number ARRIVAL, oldest first (paging)',
        numeric: true,
      },
    },
    examples: ['meshnode journal tail -n 5', 'meshnode journal tail -f --json | jq .kind'],
  },
  'journal verify': plain(
    'journal verify',
    're-check every feed from its first entry (signatures, chains)',
    'journal.verify',
  ),
  'journal forceSelfHead': plain(
    'journal forceSelfHead',
    'append as this node without a peer confirming its feed head (risks a fork)',
    'journal.forceSelfHead',
  ),
  'nft list': plain(
    'nft list',
    'the sets and elements the nft executor holds (what the kernel enforces)',
    'nft.list',
  ),
  'nft plan': plain('nft plan', 'what a reconcile would change, without changing it', 'nft.plan'),
  'nft reconcile': plain(
    'nft reconcile',
    'make the firewall match the journal now (removes what should not be there)',
    'nft.reconcile',
  ),
  'audit verify': plain(
    'audit verify',
    'check the hash chains of the admin and grant audit logs from their first line',
    'audit.verify',
  ),
  completion: {
    usage: 'completion bash',
    summary: 'print the bash completion script (source it, or install to /etc/bash_completion.d)',
    args: ['shell'],
    examples: ['meshnode completion bash > /etc/bash_completion.d/meshnode'],
  },
};

/** Commands in two words: `journal tail`, `mesh show`, `config check`, … */
export const GROUPS = [
  ...new Set(
    Object.keys(COMMANDS)
      .filter((n) => n.includes(' '))
      .map((n) => n.split(' ')[0]!),
  ),
];

/** A banned peer by full DID or unique prefix, as `unban` takes it. */
function pickBanned(bans: ReadonlyArray<{ did: string }>, who: string): string {
  const found = bans.filter((b) => b.did === who || (who.length >= 12 && b.did.startsWith(who)));
  if (found.length > 1) {
    throw E.ERR_AMBIGUOUS(`${JSON.stringify(who)} is the prefix of ${found.length} banned DIDs`);
  }
  // Not banned (or not known to be): the node's own answer says so.
  return found[0]?.did ?? who;
}
