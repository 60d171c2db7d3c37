/**
 * The `meshnode` command. `start` runs the node in the foreground (what
 * systemd runs); `init` prepares a state directory; every other command
 * talks to a running node over its admin socket. Arguments are parsed by
 * node:util's parseArgs (strict: unknown flags are usage errors).
 *
 * `--json` prints one envelope: {"v":1,"ok":true,"result":…} or
 * {"v":1,"ok":false,"error":{"code":"ERR_…","message":"…"}}.
 *
 * Exit codes (EXIT below): 0 ok, 1 the node failed or escalated (start),
 * 2 usage error, 3 node not running, 4 refused by the node, 5 internal
 * error, 130 forced stop by a second signal.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { E, MeshError } from '../runtime/errors.js';
import { FOUND_REQUEST_FILE } from '../runtime/types.js';
import { pickMember, withLinks } from './cli-directory.js';
import type { NodesPage, PeersAnswer } from './cli-directory.js';
import { AdminClient } from './admin-client.js';
import { adminSocketPath, findConfig, loadConfig } from './config.js';
import { PACKAGE_VERSION } from './config-values.js';
import { render } from './cli-render.js';

export const EXIT = { ok: 0, failed: 1, usage: 2, notRunning: 3, refused: 4, internal: 5 } as const;
/** The --json envelope's version. */
const ENVELOPE = 1;

interface Command {
  usage: string;
  summary: string;
  /** Named options beyond the global ones. */
  options?: Record<string, { type: 'string' | 'boolean'; short?: string }>;
  /** Positional argument names, all required. */
  args?: string[];
  /** Build the admin request; absent for commands that do not talk to a node. */
  request?: (
    args: string[],
    values: Record<string, string | boolean | undefined>,
  ) => [string, Record<string, unknown>];
  /** A command that needs more than one call (it gets the connected client). */
  run?: (
    call: (method: string, params: Record<string, unknown>) => Promise<unknown>,
    args: string[],
    values: Record<string, string | boolean | undefined>,
  ) => Promise<unknown>;
}

/** Paging options of the catalog commands. */
const PAGING = { limit: { type: 'string' }, after: { type: 'string' } } as const;

function page(
  what: string,
  v: Record<string, string | boolean | undefined>,
): Record<string, unknown> {
  return {
    what,
    limit: Number(v.limit ?? 1000),
    ...(typeof v.after === 'string' ? { after: v.after } : {}),
  };
}

const COMMANDS: Record<string, Command> = {
  init: {
    usage: 'init [--config FILE] [--new-mesh NAME [--open]]',
    summary: 'create the state directory and the node key (0600); found a mesh at first start',
    options: { 'new-mesh': { type: 'string' }, open: { type: 'boolean' } },
  },
  'mesh found': {
    usage: 'mesh found NAME [--open]',
    summary: 'found a mesh on this node (closed unless --open)',
    args: ['name'],
    options: { open: { type: 'boolean' } },
    request: ([n], v) => ['mesh.found', { name: n, admission: v.open ? 'open' : 'closed' }],
  },
  'mesh show': {
    usage: 'mesh show',
    summary: 'the mesh this node belongs to: id, name, admission, founder, counts',
    request: () => ['membership', {}],
  },
  invite: {
    usage: 'invite [--rights R,...] [--expires 24h] [--for DID]',
    summary: 'print a single-use invite token to this mesh',
    options: { rights: { type: 'string' }, expires: { type: 'string' }, for: { type: 'string' } },
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
        ...(typeof v.expires === 'string' ? { expiresMs: durationMs(v.expires) } : {}),
        ...(typeof v.for === 'string' ? { for: v.for } : {}),
      },
    ],
  },
  join: {
    usage: 'join TOKEN [--timeout 15s]',
    summary: "join a mesh: dial the token's inviter and redeem it",
    args: ['token'],
    options: { timeout: { type: 'string' } },
    request: ([t], v) => [
      'join',
      { token: t, ...(typeof v.timeout === 'string' ? { timeoutMs: durationMs(v.timeout) } : {}) },
    ],
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
    options: PAGING,
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
    options: PAGING,
    request: (_a, v) => ['catalog', page('services', v)],
  },
  subscriptions: {
    usage: 'subscriptions [--limit N] [--after ID]',
    summary: "this node's subscriptions, and others' to its offers, with approval state",
    options: PAGING,
    request: (_a, v) => ['catalog', page('subscriptions', v)],
  },
  start: {
    usage: 'start [--config FILE] [--adopt-table]',
    summary:
      'run the node in the foreground (--adopt-table: manage an existing nft table meshnode did not create)',
    options: { 'adopt-table': { type: 'boolean' } },
  },
  'config check': {
    usage: 'config check FILE',
    summary: 'validate a config file without starting: every problem at once, exit 2 if any',
    args: ['FILE'],
  },
  status: { usage: 'status', summary: 'node and actor states', request: () => ['status', {}] },
  actors: {
    usage: 'actors',
    summary: 'actors with mailbox, latency, heap',
    request: () => ['actors', {}],
  },
  console: {
    usage: 'console',
    summary: 'full-screen live view: actors, peers, feeds, grants, trace',
  },
  peers: {
    usage: 'peers',
    summary: 'gossip peers, bans, frozen feeds',
    request: () => ['peers', {}],
  },
  grants: {
    usage: 'grants',
    summary: 'live grants and activations',
    request: () => ['grants', {}],
  },
  offer: {
    usage:
      'offer --service NAME --port N [--proto tcp|udp] [--mode manual|auto] [--lease SECONDS] [--any-source] [--force]',
    summary:
      "offer a service (--any-source: grant NATed peers off their record's mesh IP; --force: even port 22 or a port with live connections, which are dropped)",
    options: {
      service: { type: 'string' },
      port: { type: 'string' },
      proto: { type: 'string' },
      mode: { type: 'string' },
      lease: { type: 'string' },
      'any-source': { type: 'boolean' },
      force: { type: 'boolean' },
    },
    request: (_a, v) => [
      'offer',
      {
        service: v.service,
        port: Number(v.port),
        proto: v.proto ?? 'tcp',
        mode: v.mode ?? 'manual',
        leaseSeconds: Number(v.lease ?? 3600),
        ...(v['any-source'] ? { anySource: true } : {}),
        ...(v.force ? { force: true } : {}),
      },
    ],
  },
  subscribe: {
    usage: 'subscribe --provider NAME|DID --service NAME',
    summary: "subscribe to a provider's service",
    options: { provider: { type: 'string' }, service: { type: 'string' } },
    request: (_a, v) => ['subscribe', { provider: v.provider, service: v.service }],
  },
  approve: {
    usage: 'approve SUBSCRIPTION',
    summary: 'approve a subscription to one of our services',
    args: ['subscription'],
    request: ([s]) => ['approve', { subscription: s }],
  },
  revoke: {
    usage: 'revoke TARGET',
    summary: 'revoke an offer, subscription, approval or grant of this node',
    args: ['target'],
    request: ([t]) => ['revoke', { target: t }],
  },
  unban: {
    usage: 'unban DID',
    summary: 'lift the ban of a gossip peer',
    args: ['did'],
    request: ([d]) => ['unban', { did: d }],
  },
  undial: {
    usage: 'undial URL',
    summary: "stop dialing an endpoint learnt from a node record (see 'peers')",
    args: ['url'],
    request: ([u]) => ['undial', { url: u }],
  },
  activate: {
    usage: 'activate SUBSCRIPTION',
    summary: 'ask the provider for access; prints the endpoint',
    args: ['subscription'],
    request: ([s]) => ['activate', { subscription: s }],
  },
  'journal tail': {
    usage: 'journal tail [--after N] [--limit N]',
    summary: 'entries in local arrival order',
    options: { after: { type: 'string' }, limit: { type: 'string' } },
    request: (_a, v) => [
      'journal.tail',
      { after: Number(v.after ?? 0), limit: Number(v.limit ?? 20) },
    ],
  },
  'journal verify': {
    usage: 'journal verify',
    summary: 're-check every feed from its first entry',
    request: () => ['journal.verify', {}],
  },
  'journal forceSelfHead': {
    usage: 'journal forceSelfHead',
    summary: 'append as this node without a peer confirming its feed head (risks a fork)',
    request: () => ['journal.forceSelfHead', {}],
  },
  restart: {
    usage: 'restart ACTOR',
    summary: 'restart one actor',
    args: ['actor'],
    request: ([a]) => ['restart', { actor: a }],
  },
  trace: {
    usage: 'trace ACTOR [--count N] [--ms N]',
    summary: 'the next messages an actor handles',
    args: ['actor'],
    options: { count: { type: 'string' }, ms: { type: 'string' } },
    request: ([a], v) => [
      'trace',
      { actor: a, count: Number(v.count ?? 20), ms: Number(v.ms ?? 10_000) },
    ],
  },
  'log-level': {
    usage: 'log-level LEVEL',
    summary: 'set the log level of the running node',
    args: ['level'],
    request: ([l]) => ['logLevel', { level: l }],
  },
  stop: { usage: 'stop', summary: 'stop the node gracefully', request: () => ['stop', {}] },
};

/** A duration as admins write them: 90s, 30m, 24h, 7d. */
const DURATION = /^(\d{1,9})(s|m|h|d)$/;

function durationMs(text: string): number {
  const m = DURATION.exec(text);
  if (!m) return NaN;
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's']!;
}

/** Options that take a whole number; anything else is a usage error, not a request the node refuses. */
const NUMERIC_OPTIONS = ['port', 'lease', 'after', 'limit', 'count', 'ms'];

const GLOBAL_OPTIONS = {
  config: { type: 'string', short: 'c' },
  socket: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Commands in two words: `journal tail`, `mesh show`, `config check`. */
const GROUPS = ['journal', 'mesh', 'config'];

export async function main(argv: string[]): Promise<number> {
  const [first, second] = argv;
  const name =
    first !== undefined && GROUPS.includes(first) && second && !second.startsWith('-')
      ? `${first} ${second}`
      : first;
  // Known before parsing, so even a usage error is answered as an envelope.
  const json = argv.includes('--json');
  if (name === undefined) return usageError('no command', json);
  if (name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return EXIT.ok;
  }
  if (name === 'version' || name === '--version' || name === '-V') {
    const v = { version: PACKAGE_VERSION, node: process.versions.node };
    process.stdout.write(
      json
        ? `${JSON.stringify({ v: ENVELOPE, ok: true, result: v })}\n`
        : `meshnode ${v.version} (node ${v.node})\n`,
    );
    return EXIT.ok;
  }
  if (name.startsWith('-')) return usageError(`a command comes first, before ${name}`, json);
  if (GROUPS.includes(name)) {
    // `journal`, `journal --help`: the group's commands, not "unknown command".
    const sub = Object.entries(COMMANDS).filter(([n]) => n.startsWith(`${name} `));
    const list = sub.map(([, c]) => `  meshnode ${c.usage.padEnd(40)} ${c.summary}`).join('\n');
    if (argv.includes('--help') || argv.includes('-h')) {
      process.stdout.write(`${name} commands:\n${list}\n`);
      return EXIT.ok;
    }
    return usageError(`${name} needs a command:\n${list}`, json, undefined, true);
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    const near = closest(name, [...Object.keys(COMMANDS), ...GROUPS]);
    return usageError(
      `unknown command ${name}${near ? ` (did you mean ${near}?)` : ''}`,
      json,
      undefined,
      true,
    );
  }
  const rest = argv.slice(name.split(' ').length);
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: { ...GLOBAL_OPTIONS, ...cmd.options },
    });
  } catch (err) {
    return usageError(argsProblem(err, { ...GLOBAL_OPTIONS, ...cmd.options }), json, cmd);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) {
    process.stdout.write(`usage: meshnode ${cmd.usage}\n\n${cmd.summary}\n`);
    return EXIT.ok;
  }
  const wantArgs = cmd.args ?? [];
  if (parsed.positionals.length !== wantArgs.length) {
    return usageError(
      `${name} takes ${wantArgs.length ? wantArgs.join(' ') : 'no arguments'}`,
      json,
      cmd,
    );
  }
  // `--after` is a number for journal tail, a key (DID, id) for the catalog commands.
  const numeric =
    name === 'journal tail' ? NUMERIC_OPTIONS : NUMERIC_OPTIONS.filter((o) => o !== 'after');
  const badNumber = numeric.find(
    (o) => typeof values[o] === 'string' && !/^\d{1,15}$/.test(values[o] as string),
  );
  if (badNumber) return usageError(`--${badNumber} must be a whole number`, json, cmd);
  const configPath = findConfig(values.config as string | undefined);
  // The daemon and the crypto are loaded only by the commands that use them:
  // every other command is a short-lived client that should start fast.
  if (name === 'start') {
    const { runDaemon } = await import('./daemon.js');
    if (values['adopt-table']) process.env.MESHNODE_NFT_ADOPT_TABLE = '1';
    return runDaemon(configPath ? { configPath } : {});
  }
  if (name === 'config check') {
    const file = parsed.positionals[0]!;
    return report(
      json,
      () => {
        loadConfig(file);
        return Promise.resolve({ file, valid: true });
      },
      'config check',
    );
  }
  if (name === 'init') {
    const newMesh = values['new-mesh'];
    const found =
      typeof newMesh === 'string'
        ? { name: newMesh, admission: values.open ? ('open' as const) : ('closed' as const) }
        : undefined;
    return report(json, () => init(configPath, found), 'init');
  }
  for (const o of ['expires', 'timeout']) {
    if (typeof values[o] === 'string' && !DURATION.test(values[o] as string)) {
      return usageError(`--${o} must be a duration like 90s, 30m, 24h or 7d`, json, cmd);
    }
  }
  if (name === 'console') {
    let socket: string;
    try {
      socket = await socketFor(values);
    } catch (err) {
      return usageError((err as Error).message, json, cmd);
    }
    const { runConsole } = await import('./console.js');
    return runConsole(socket);
  }
  const missing = Object.keys(cmd.options ?? {}).find(
    (o) => ['service', 'port', 'provider'].includes(o) && values[o] === undefined,
  );
  if (missing) return usageError(`--${missing} is required`, json, cmd);
  return report(
    json,
    async () => {
      const client = await AdminClient.connect(await socketFor(values));
      try {
        if (cmd.run) {
          return await cmd.run((m, p) => client.call(m, p), parsed.positionals, values);
        }
        const [method, params] = cmd.request!(parsed.positionals, values);
        return await client.call(method, params);
      } finally {
        client.close();
      }
    },
    name,
  );
}

/** Run `work` and print its result (or error) as text or the JSON envelope; returns the exit code. */
async function report(json: boolean, work: () => Promise<unknown>, name = ''): Promise<number> {
  try {
    const result = await work();
    process.stdout.write(
      json ? `${JSON.stringify({ v: ENVELOPE, ok: true, result })}\n` : render(name, result),
    );
    return EXIT.ok;
  } catch (err) {
    const code = err instanceof MeshError ? err.code : 'ERR_INTERNAL';
    const message = (err as Error).message;
    if (json)
      process.stdout.write(
        `${JSON.stringify({ v: ENVELOPE, ok: false, error: { code, message } })}\n`,
      );
    else process.stderr.write(`meshnode: ${code}: ${message}\n`);
    if (code === 'ERR_NOT_RUNNING') return EXIT.notRunning;
    // A config file that does not load is the command line's fault, not the node's.
    if (code === 'ERR_INVALID_CONFIG') return EXIT.usage;
    return err instanceof MeshError && code !== 'ERR_ADMIN' ? EXIT.refused : EXIT.internal;
  }
}

async function socketFor(values: Record<string, string | boolean | undefined>): Promise<string> {
  if (typeof values.socket === 'string') return resolve(values.socket);
  return adminSocketPath(loadConfig(findConfig(values.config as string | undefined)));
}

/**
 * State directory (0700) and node key (0600); an existing key is kept, never
 * replaced. `--new-mesh` leaves a founding request the journal carries out
 * at the node's first start (only the journal writer appends).
 */
async function init(
  configPath: string | undefined,
  found?: { name: string; admission: 'open' | 'closed' },
): Promise<Record<string, unknown>> {
  const { generateKeyPair, readKeyFile, writeKeyFile } = await import('../runtime/crypto/index.js');
  const config = loadConfig(configPath);
  const stateDir = resolve(config.node.state_dir);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const keyPath = join(stateDir, 'node.key');
  const created = !existsSync(keyPath);
  const key = created ? generateKeyPair() : await readKeyFile(keyPath);
  if (created) await writeKeyFile(keyPath, key);
  if (configPath && !existsSync(configPath)) writeFileSync(configPath, '', { mode: 0o640 });
  if (found) {
    if (!/^[a-z][a-z0-9_]{0,31}$/.test(found.name)) {
      throw E.ERR_BAD_REQUEST('--new-mesh NAME must match ^[a-z][a-z0-9_]{0,31}$');
    }
    writeFileSync(join(stateDir, FOUND_REQUEST_FILE), `${JSON.stringify(found)}\n`, {
      mode: 0o600,
    });
  }
  return {
    stateDir,
    keyFile: keyPath,
    did: key.did,
    created,
    ...(found ? { newMesh: found } : {}),
  };
}

function usage(): string {
  const lines = Object.values(COMMANDS).map((c) => `  ${c.usage.padEnd(44)} ${c.summary}`);
  return `usage: meshnode <command> [options]

commands:
${lines.join('\n')}

options (every command):
  -c, --config FILE   TOML config file; else $MESHNODE_CONFIG, /etc/meshnode/meshnode.toml,
                      ./meshnode.toml, or the embedded defaults (MESHNODE_CONFIG= forces them)
      --socket PATH   admin socket (default: from the config)
      --json          print one JSON envelope {"v":1,"ok":…}
  -h, --help          help for a command

exit codes: 0 ok, 1 node failed, 2 usage, 3 node not running, 4 refused, 5 internal error
`;
}

/**
 * A usage error: the message, then the command's usage line, or (`brief`)
 * a pointer to `meshnode help` rather than every command (a typo should not
 * scroll the screen).
 */
function usageError(message: string, json: boolean, cmd?: Command, brief = false): number {
  if (json) {
    const error = { code: 'ERR_USAGE', message };
    process.stdout.write(`${JSON.stringify({ v: ENVELOPE, ok: false, error })}\n`);
  }
  const after = cmd
    ? `usage: meshnode ${cmd.usage}\n`
    : brief
      ? "run 'meshnode help' for every command\n"
      : usage();
  process.stderr.write(`meshnode: ${message}\n${after}`);
  return EXIT.usage;
}

/** parseArgs' complaint in the CLI's words, with a suggestion for a mistyped option. */
function argsProblem(err: unknown, options: Record<string, unknown>): string {
  const e = err as { code?: string; message: string };
  const flag = /'(--?[^' ]+)/.exec(e.message)?.[1] ?? '';
  if (e.code?.endsWith('_PARSE_ARGS_UNKNOWN_OPTION')) {
    const near = closest(flag.replace(/^-+/, ''), Object.keys(options));
    return `unknown option ${flag}${near ? ` (did you mean --${near}?)` : ''}`;
  }
  if (/argument missing/.test(e.message)) return `option ${flag} needs a value`;
  if (/does not take an argument/.test(e.message)) return `option ${flag} takes no value`;
  return e.message;
}

/** The candidate nearest to `word` by edit distance, if it is near enough to be a typo. */
function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best;
}

/** Edit distance with a swap of two neighbours as one edit (`stauts` is one from `status`). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
