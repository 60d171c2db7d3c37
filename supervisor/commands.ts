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
import { MeshError } from '../runtime/errors.js';
import { AdminClient } from './admin-client.js';
import { adminSocketPath, loadConfig } from './config.js';
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
}

const COMMANDS: Record<string, Command> = {
  init: {
    usage: 'init [--config FILE]',
    summary: 'create the state directory and the node key (0600)',
  },
  start: { usage: 'start [--config FILE]', summary: 'run the node in the foreground' },
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
    usage: 'offer --service NAME --port N [--proto tcp|udp] [--mode manual|auto] [--lease SECONDS]',
    summary: 'offer a service',
    options: {
      service: { type: 'string' },
      port: { type: 'string' },
      proto: { type: 'string' },
      mode: { type: 'string' },
      lease: { type: 'string' },
    },
    request: (_a, v) => [
      'offer',
      {
        service: v.service,
        port: Number(v.port),
        proto: v.proto ?? 'tcp',
        mode: v.mode ?? 'manual',
        leaseSeconds: Number(v.lease ?? 3600),
      },
    ],
  },
  subscribe: {
    usage: 'subscribe --provider DID --service NAME',
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

/** Options that take a whole number; anything else is a usage error, not a request the node refuses. */
const NUMERIC_OPTIONS = ['port', 'lease', 'after', 'limit', 'count', 'ms'];

const GLOBAL_OPTIONS = {
  config: { type: 'string', short: 'c' },
  socket: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function main(argv: string[]): Promise<number> {
  const [first, second] = argv;
  const name =
    first === 'journal' && second && !second.startsWith('-') ? `journal ${second}` : first;
  // Known before parsing, so even a usage error is answered as an envelope.
  const json = argv.includes('--json');
  if (name === undefined) return usageError('no command', json);
  if (name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return EXIT.ok;
  }
  if (name.startsWith('-')) return usageError(`a command comes first, before ${name}`, json);
  const cmd = COMMANDS[name];
  if (!cmd) return usageError(`unknown command ${name}`, json);
  const rest = argv.slice(name.split(' ').length);
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: { ...GLOBAL_OPTIONS, ...cmd.options },
    });
  } catch (err) {
    return usageError((err as Error).message, json, cmd);
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
  const badNumber = NUMERIC_OPTIONS.find(
    (o) => typeof values[o] === 'string' && !/^\d{1,15}$/.test(values[o] as string),
  );
  if (badNumber) return usageError(`--${badNumber} must be a whole number`, json, cmd);
  const configPath = values.config as string | undefined;
  // The daemon and the crypto are loaded only by the commands that use them:
  // every other command is a short-lived client that should start fast.
  if (name === 'start') {
    const { runDaemon } = await import('./daemon.js');
    return runDaemon(configPath ? { configPath } : {});
  }
  if (name === 'init') return report(json, () => init(configPath), 'init');
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
  const [method, params] = cmd.request!(parsed.positionals, values);
  return report(
    json,
    async () => {
      const client = await AdminClient.connect(await socketFor(values));
      try {
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
  return adminSocketPath(loadConfig(values.config as string | undefined));
}

/** State directory (0700) and node key (0600); an existing key is kept, never replaced. */
async function init(configPath: string | undefined): Promise<Record<string, unknown>> {
  const { generateKeyPair, readKeyFile, writeKeyFile } = await import('../runtime/crypto/index.js');
  const config = loadConfig(configPath);
  const stateDir = resolve(config.node.state_dir);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const keyPath = join(stateDir, 'node.key');
  const created = !existsSync(keyPath);
  const key = created ? generateKeyPair() : await readKeyFile(keyPath);
  if (created) await writeKeyFile(keyPath, key);
  if (configPath && !existsSync(configPath)) writeFileSync(configPath, '', { mode: 0o640 });
  return { stateDir, keyFile: keyPath, did: key.did, created };
}

function usage(): string {
  const lines = Object.values(COMMANDS).map((c) => `  ${c.usage.padEnd(44)} ${c.summary}`);
  return `usage: meshnode <command> [options]

commands:
${lines.join('\n')}

options (every command):
  -c, --config FILE   TOML config file (embedded defaults without it)
      --socket PATH   admin socket (default: from the config)
      --json          print one JSON envelope {"v":1,"ok":…}
  -h, --help          help for a command

exit codes: 0 ok, 1 node failed, 2 usage, 3 node not running, 4 refused, 5 internal error
`;
}

function usageError(message: string, json: boolean, cmd?: Command): number {
  if (json) {
    const error = { code: 'ERR_USAGE', message };
    process.stdout.write(`${JSON.stringify({ v: ENVELOPE, ok: false, error })}\n`);
  }
  process.stderr.write(`meshnode: ${message}\n${cmd ? `usage: meshnode ${cmd.usage}\n` : usage()}`);
  return EXIT.usage;
}
