/**
 * The node's configuration: a TOML file (smol-toml parses it), merged over
 * the embedded defaults, validated once (zod, via runtime/options.ts);
 * config-specs.ts turns it into the supervisor's child specs.
 *
 * With no file, the embedded defaults run a complete node: state under
 * ./var, everything on loopback. That is what `npm start` does.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { isGossipUrl } from '../runtime/domain/gossip-url.js';
import { invalidConfig } from '../runtime/errors.js';
import {
  actorName,
  allProblems,
  intIn,
  oneOf,
  parseOptions,
  positiveInt,
} from '../runtime/options.js';
import { RESTARTS, STRATEGIES } from './child-spec.js';
import { isCidr, isListenAddress, isLoopbackHost, urlHost } from './config-values.js';

export { isLoopbackHost } from './config-values.js';

/** Per-actor tuning an operator may set under [actors.NAME]. */
const actorTuning = z.strictObject({
  restart: oneOf(RESTARTS).optional(),
  shutdown_ms: intIn(0, 600_000).optional(),
  init_timeout_ms: intIn(1, 600_000).optional(),
  ask_timeout_ms: intIn(1, 600_000).optional(),
  mailbox_high_water: intIn(1, 1_000_000).optional(),
  heartbeat_interval_ms: intIn(1, 60_000).optional(),
  heartbeat_timeout_ms: intIn(1, 600_000).optional(),
  max_old_generation_mb: intIn(16, 16_384).optional(),
  options: z.record(z.string(), z.unknown()).optional(),
});

/** Development and tests only: more actor modules run beside the built-ins. */
const extraActor = actorTuning.extend({
  name: actorName(),
  module: z.string({ error: 'must be a module path' }).min(1, { error: 'must not be empty' }),
  /** Names of built-in or extra actors this one gets a channel to. */
  links: z.array(actorName()).default([]),
});

/** ws:// or wss:// URL of a peer's gossip endpoint. */
const wsUrl = () =>
  z
    .string({ error: 'must be a ws:// or wss:// URL' })
    .max(512, { error: 'must be at most 512 characters' })
    .refine(isGossipUrl, { error: 'must be a ws:// or wss:// URL with a host and port' });

const gossipSchema = z
  .strictObject({
    /** host:port of the gossip server; "" for none (this node only dials out). */
    listen: z
      .string({ error: 'must be "host:port" or ""' })
      .regex(/^$|^(\[[^\]]+\]|[^:\s]+):\d{1,5}$/, { error: 'must be "host:port" or ""' })
      .refine((s) => s === '' || Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535, {
        error: 'must be "host:port" with a port of at most 65535',
      })
      .default('127.0.0.1:7946'),
    path: z
      .string({ error: 'must be a URL path' })
      .regex(/^\/[A-Za-z0-9/_-]*$/, { error: 'must be a URL path' })
      .default('/gossip'),
    /** The URL peers dial to reach this node, announced in its record ("" = built from listen). */
    advertise: z
      .union([z.literal(''), wsUrl()], { error: 'must be a ws:// or wss:// URL or ""' })
      .default(''),
    /** Append this node's record (name, endpoint, mesh IP, version) when it changes. */
    announce: z.boolean({ error: 'must be true or false' }).default(true),
    /** Peers to dial, as wss:// URLs (ws:// only with insecure_plaintext, on loopback). */
    peers: z.array(wsUrl()).max(256, { error: 'must list at most 256 peers' }).default([]),
    /**
     * Plain ws:// links instead of TLS 1.3: for tests and debugging on one
     * machine only. Refused unless `listen` and every peer are loopback.
     */
    insecure_plaintext: z.boolean({ error: 'must be true or false' }).default(false),
    /** open: any DID that proves itself; closed: only the DIDs in the allowlist file. */
    mode: oneOf(['open', 'closed'] as const).default('open'),
    allowlist: z.string({ error: 'must be a path' }).default(''),
    /** Also dial the gossip endpoints announced in `node` records. */
    discover: z.boolean({ error: 'must be true or false' }).default(true),
    /** peers: learn our own feed head from a peer before appending; force: trust the local copy. */
    self_sync: oneOf(['peers', 'force'] as const).default('peers'),
    max_peers: intIn(1, 1024).default(64),
    max_pending_handshakes: intIn(1, 4096).default(128),
    max_frame_bytes: intIn(1024, 64 * 1024 * 1024).default(4 * 1024 * 1024),
    // At most the journal's ingest batch (MAX_BATCH): a frame is ingested as one batch, and a
    // larger one was refused whole (ERR_TOO_LARGE), stalling that feed. 1,000 rather than 500:
    // half the round trips, replication ~1.6x -> ~1.8-2.1x hypercore (bench gossip).
    max_entries_per_frame: positiveInt()
      .max(1000, { error: 'must be at most 1000 (one journal ingest batch)' })
      .default(1000),
    max_wants_in_flight: intIn(1, 256).default(16),
    /** Authenticated peers from one source IP (configured and allowlisted peers exempt). */
    max_peers_per_ip: intIn(1, 1024).default(16),
    /** Endpoints learnt from node records that may be dialed at once. */
    max_dial_targets: intIn(0, 1024).default(64),
    /** New outbound connections a second, all targets together. */
    dial_rate_per_s: intIn(1, 1000).default(4),
    handshake_timeout_ms: intIn(100, 60_000).default(5000),
    idle_timeout_ms: intIn(500, 3_600_000).default(60_000),
    anti_entropy_ms: intIn(50, 3_600_000).default(10_000),
    rate_frames_per_s: intIn(1, 100_000).default(2000),
    burst_frames: intIn(1, 1_000_000).default(4000),
    max_buffered_bytes: intIn(65_536, 256 * 1024 * 1024).default(8 * 1024 * 1024),
    backoff_base_ms: intIn(10, 60_000).default(500),
    backoff_max_ms: intIn(10, 3_600_000).default(30_000),
  })
  .refine((g) => g.mode === 'open' || g.allowlist !== '', {
    error: 'must name a file when gossip.mode is closed',
    path: ['allowlist'],
  })
  .superRefine((g, ctx) => {
    if (g.insecure_plaintext) {
      if (g.listen !== '' && !isLoopbackHost(g.listen.slice(0, g.listen.lastIndexOf(':')))) {
        ctx.addIssue({
          code: 'custom',
          path: ['listen'],
          message: 'must be a loopback address when gossip.insecure_plaintext is true',
        });
      }
      g.peers.forEach((url, i) => {
        if (!isLoopbackHost(urlHost(url))) {
          ctx.addIssue({
            code: 'custom',
            path: ['peers', i],
            message: 'must be a loopback URL when gossip.insecure_plaintext is true',
          });
        }
      });
      return;
    }
    g.peers.forEach((url, i) => {
      if (!url.startsWith('wss://')) {
        ctx.addIssue({
          code: 'custom',
          path: ['peers', i],
          message:
            'must be a wss:// URL (ws:// needs gossip.insecure_plaintext = true, loopback only)',
        });
      }
    });
  });

/** A CIDR block: an IP literal, a slash, a prefix length that fits its family. */
const cidr = () =>
  z.string({ error: 'must be a CIDR like 10.0.0.0/8' }).refine(isCidr, {
    error: 'must be a CIDR like 10.0.0.0/8 or fd00::/8',
  });

const meshSchema = z.strictObject({
  /** The mesh this node belongs to (its founding entry's id); "" = whatever the journal says. */
  id: z
    .string({ error: 'must be a mesh id' })
    .regex(/^$|^[0-9a-f]{64}$/, { error: 'must be a 64-hex-digit mesh id or ""' })
    .default(''),
  /** The mesh's address space: grants go only to source IPs inside it. */
  cidrs: z
    .array(cidr())
    .min(1, { error: 'must list at least one CIDR' })
    .default(['10.0.0.0/8', 'fd00::/8']),
});

const nftSchema = z.strictObject({
  /** auto: nft when it can manage the table here (root or CAP_NET_ADMIN), else memory + a loud warning. */
  backend: oneOf(['auto', 'nft', 'memory'] as const).default('auto'),
  /**
   * Manage a table of our name that meshnode did not create (it carries no
   * meshnode mark). Off: such a table is refused (ERR_NFT_FOREIGN_TABLE)
   * rather than emptied of its sets within a reconcile.
   */
  adopt_table: z.boolean({ error: 'must be true or false' }).default(false),
  /** The executor's own table (family inet); it touches nothing else. */
  table: z
    .string({ error: 'must be a string' })
    .regex(/^[a-z][a-z0-9_]{0,31}$/, { error: 'must match ^[a-z][a-z0-9_]{0,31}$' })
    .default('meshnode'),
  /** The nft binary, by absolute path (never looked up on PATH). */
  nft: z
    .string({ error: 'must be an absolute path' })
    .regex(/^(\/[A-Za-z0-9._+-]+)+$/, { error: 'must be an absolute path' })
    .default('/usr/sbin/nft'),
  /** Full reconcile (list, diff, fix) period once the grants actor gave the desired state. */
  reconcile_ms: intIn(100, 86_400_000).default(60_000),
  /** Cheap structural check period: a deleted or flushed table is back within about this. */
  // Every 2 s: a deleted table is back within 5 s, and applies rarely queue behind the check.
  check_ms: intIn(100, 3_600_000).default(2000),
  /** Applies arriving within this window share one transaction. */
  coalesce_ms: intIn(0, 1000).default(2),
});

/** Defaults for every sandbox process (docs/design.md §7); a [[policy]] may set its own. */
const sandboxSchema = z.strictObject({
  /** Pool threads running processes (one message at a time per thread). */
  threads: positiveInt().max(64, { error: 'must be at most 64' }).default(1),
  /** Memory cap of one process (QuickJS runtime limit). */
  memory_mb: positiveInt().max(1024, { error: 'must be at most 1024' }).default(32),
  /** CPU deadline of one message. */
  deadline_ms: positiveInt().max(60_000, { error: 'must be at most 60000' }).default(100),
  max_output_bytes: intIn(1, 16 * 1024 * 1024).default(65_536),
  max_state_bytes: intIn(1, 64 * 1024 * 1024).default(1_048_576),
  /** Messages waiting per process; more are refused. */
  inbox: intIn(1, 10_000).default(64),
});

/** An operator policy: a sandbox process the grant authorizer asks (action Authorize). */
const policySchema = z.strictObject({
  name: z
    .string({ error: 'must be a string' })
    .regex(/^[a-z][a-z0-9_-]{0,31}$/, { error: 'must match ^[a-z][a-z0-9_-]{0,31}$' }),
  /** The process module (ES module exporting handle(msg, env)). */
  module: z.string({ error: 'must be a path' }).min(1, { error: 'must not be empty' }),
  memory_mb: positiveInt().max(1024, { error: 'must be at most 1024' }).optional(),
  deadline_ms: positiveInt().max(60_000, { error: 'must be at most 60000' }).optional(),
  max_output_bytes: intIn(1, 16 * 1024 * 1024).optional(),
  max_state_bytes: intIn(1, 64 * 1024 * 1024).optional(),
  inbox: intIn(1, 10_000).optional(),
});

const policyList = z
  .array(policySchema)
  .default([])
  .refine((list) => new Set(list.map((p) => p.name)).size === list.length, {
    error: 'must not name a policy twice',
  });

const grantsSchema = z.strictObject({
  /** How long a provider's nonce is good for. */
  nonce_ttl_ms: intIn(100, 600_000).default(10_000),
  /** Per subscriber DID: sustained requests a minute and burst. */
  subscriber_per_minute: intIn(1, 1_000_000_000).default(20),
  subscriber_burst: intIn(1, 1_000_000_000).default(10),
  /** All subscribers together: requests a second and burst. */
  global_per_second: intIn(1, 1_000_000_000).default(200),
  global_burst: intIn(1, 1_000_000_000).default(400),
  /** "" = STATE_DIR/audit/grants.log */
  audit_log: z.string({ error: 'must be a path' }).default(''),
  /** The consumer renews an activation when this share of its lease has passed. */
  renew_at: z
    .number({ error: 'must be a number between 0.1 and 0.9' })
    .min(0.1, { error: 'must be a number between 0.1 and 0.9' })
    .max(0.9, { error: 'must be a number between 0.1 and 0.9' })
    .default(0.66),
  /** How often expired leases are swept into `ungrant` entries. */
  sweep_ms: intIn(10, 3_600_000).default(1000),
  /** How often the desired grants are handed to the nft executor to reconcile. */
  reconcile_ms: intIn(100, 86_400_000).default(30_000),
});

export const configSchema = z.strictObject({
  node: z
    .strictObject({
      state_dir: z
        .string({ error: 'must be a path' })
        .min(1, { error: 'must not be empty' })
        .default('./var'),
      log_level: oneOf(['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const).default(
        'info',
      ),
      /** The name this node announces in its node record ("" = the host name, made safe). */
      name: z
        .string({ error: 'must be a node name' })
        .regex(/^$|^[a-z][a-z0-9_]{0,31}$/, { error: 'must match ^[a-z][a-z0-9_]{0,31}$ or be ""' })
        .default(''),
      /** The node's address inside the mesh, as its record announces it ("" = the advertised host). */
      mesh_ip: z
        .string({ error: 'must be an IP address or ""' })
        .refine((s) => s === '' || (isIP(s) !== 0 && !s.includes('%')), {
          error: 'must be an IP address literal or ""',
        })
        .default(''),
    })
    .prefault({}),
  supervisor: z
    .strictObject({
      strategy: oneOf(STRATEGIES).default('one_for_one'),
      max_restarts: intIn(0, 10_000).default(5),
      period_seconds: intIn(1, 86_400).default(10),
    })
    .prefault({}),
  metrics: z
    .strictObject({
      /** host:port for Prometheus scrapes; loopback by default; "" disables. */
      listen: z
        .string({ error: 'must be "host:port" or ""' })
        .refine(isListenAddress, {
          error: 'must be "host:port" (an IP literal or localhost) or ""',
        })
        .default('127.0.0.1:9464'),
    })
    .prefault({}),
  admin: z
    .strictObject({
      /** "" = $RUNTIME_DIRECTORY/admin.sock under systemd, else STATE_DIR/admin.sock. */
      socket: z.string({ error: 'must be a path' }).default(''),
      /** A group whose members may use the socket (mode 0660); "" keeps it 0600. */
      group: z
        .string({ error: 'must be a group name' })
        .regex(/^$|^[a-z_][a-z0-9_-]{0,31}$/, { error: 'must be a group name' })
        .default(''),
    })
    .prefault({}),
  gossip: gossipSchema.prefault({}),
  mesh: meshSchema.prefault({}),
  grants: grantsSchema.prefault({}),
  sandbox: sandboxSchema.prefault({}),
  policy: policyList,
  nft: nftSchema.prefault({}),
  actors: z
    .strictObject({
      journal: actorTuning.optional(),
      nft: actorTuning.optional(),
      grants: actorTuning.optional(),
      gossip: actorTuning.optional(),
      extra: z.array(extraActor).default([]),
    })
    .prefault({}),
});

export type Config = z.output<typeof configSchema>;

/**
 * Environment overrides, for the few settings a systemd unit sets (they win
 * over the file): MESHNODE_STATE_DIR (else systemd's STATE_DIRECTORY),
 * MESHNODE_LOG_LEVEL, MESHNODE_ADMIN_SOCKET (else RUNTIME_DIRECTORY/admin.sock),
 * MESHNODE_NFT_ADOPT_TABLE=1 (what `start --adopt-table` sets).
 */
export function applyEnv(data: unknown, env: NodeJS.ProcessEnv): unknown {
  const out = structuredClone((data ?? {}) as Record<string, Record<string, unknown>>);
  const set = (section: string, key: string, value: string | undefined) => {
    if (value === undefined || value === '') return;
    out[section] = { ...(out[section] ?? {}), [key]: value };
  };
  set('node', 'state_dir', env.MESHNODE_STATE_DIR ?? env.STATE_DIRECTORY?.split(':')[0]);
  set('node', 'log_level', env.MESHNODE_LOG_LEVEL);
  if (env.MESHNODE_NFT_ADOPT_TABLE === '1') out.nft = { ...(out.nft ?? {}), adopt_table: true };
  set(
    'admin',
    'socket',
    env.MESHNODE_ADMIN_SOCKET ??
      (env.RUNTIME_DIRECTORY
        ? join(env.RUNTIME_DIRECTORY.split(':')[0]!, 'admin.sock')
        : undefined),
  );
  return out;
}

/** Where the admin socket of this config lives. */
export function adminSocketPath(config: Config): string {
  return config.admin.socket !== ''
    ? resolve(config.admin.socket)
    : join(resolve(config.node.state_dir), 'admin.sock');
}

/** Where an installed node's config lives (install.sh puts it there). */
export const SYSTEM_CONFIG = '/etc/meshnode/meshnode.toml';

/**
 * Which config file a command uses, in the order admins expect: the
 * --config flag, then MESHNODE_CONFIG, then the system's
 * /etc/meshnode/meshnode.toml, then ./meshnode.toml; none found means the
 * embedded defaults. MESHNODE_CONFIG set but empty means the embedded
 * defaults whatever exists (what `npm start` does: a development node never
 * picks up an installed node's config).
 */
export function findConfig(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  exists: (path: string) => boolean = existsSync,
): string | undefined {
  if (flag !== undefined && flag !== '') return flag;
  if (env.MESHNODE_CONFIG !== undefined) return env.MESHNODE_CONFIG || undefined;
  for (const candidate of [SYSTEM_CONFIG, resolve('meshnode.toml')]) {
    if (exists(candidate)) return candidate;
  }
  return undefined;
}

/** Read and validate a config file (with environment overrides); no path means the embedded defaults. */
export function loadConfig(path?: string, env: NodeJS.ProcessEnv = process.env): Config {
  // The embedded defaults never touch the host's firewall: a node started
  // with no config (`npm start`) keeps grants in memory, loudly. A file
  // that says nothing about [nft] gets `auto` (the installed service).
  if (!path) return parseConfig(applyEnv({ nft: { backend: 'memory' } }, env));
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    // Node's message repeats the path ("ENOENT: no such file or directory, open '…'").
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : errnoText(err);
    throw invalidConfig(`cannot read config ${path}: ${why}`, err);
  }
  let data: unknown;
  try {
    data = parseToml(text);
  } catch (err) {
    throw invalidConfig(`config ${path} is not valid TOML: ${(err as Error).message}`, err);
  }
  return parseConfig(applyEnv(data, env));
}

/**
 * Validate parsed config data: ERR_INVALID_CONFIG listing every problem, one
 * per line, each naming its field (`config.supervisor.max_restarts must be …`).
 */
export function parseConfig(data: unknown): Config {
  const problems = allProblems(configSchema, data, 'config');
  if (problems.length === 1) throw invalidConfig(problems[0]!);
  if (problems.length > 1) {
    throw invalidConfig(`${problems.length} problems:\n  ${problems.join('\n  ')}`);
  }
  return parseOptions(configSchema, data, 'config');
}

/** An fs error as an operator reads it: "EACCES: permission denied", without the path again. */
function errnoText(err: unknown): string {
  return (err as Error).message.replace(/, \w+ '[^']*'$/, '');
}
