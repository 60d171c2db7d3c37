/**
 * The node's configuration turned into the supervisor's input: the built-in
 * actors in start order, who talks to whom, and each actor's options and
 * mailbox from the validated config (config.ts reads and checks it).
 */
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildSpecInput, SupervisorInput } from './child-spec.js';
import type { Config } from './config.js';
import { PACKAGE_VERSION, defaultNodeName } from './config-values.js';

/**
 * The built-in actors in start order. Journal first: everyone reads or
 * writes through it. Gossip last: it lets the outside world in only once
 * everything behind it is up. Shutdown runs in reverse, so gossip stops
 * taking input first and the journal commits last.
 */
export const BUILTIN_ACTORS = ['journal', 'nft', 'grants', 'gossip'] as const;

/** Who holds a channel to whom (docs/design.md §2); the admin endpoint reaches everyone. */
export const TOPOLOGY: ReadonlyArray<readonly [string, string]> = [
  ['gossip', 'journal'],
  ['journal', 'grants'],
  ['gossip', 'grants'],
  ['grants', 'nft'],
];

/**
 * What each built-in actor needs from the node config, and its mailbox: the
 * journal group-commits, so many appends must be able to wait on one commit.
 */
function builtinSpec(
  name: (typeof BUILTIN_ACTORS)[number],
  config: Config,
): Partial<ChildSpecInput> {
  const stateDir = resolve(config.node.state_dir);
  switch (name) {
    case 'journal':
      return {
        options: {
          stateDir,
          // A node with peers to ask learns its own feed's head before it appends as itself.
          awaitSelfSync: config.gossip.peers.length > 0 && config.gossip.self_sync === 'peers',
          meshId: config.mesh.id,
        },
        mailbox: { highWater: 8192, concurrency: 4096 },
      };
    case 'gossip':
      return {
        options: {
          stateDir,
          ...gossipOptions(config.gossip),
          nodeName: config.node.name === '' ? defaultNodeName() : config.node.name,
          meshIp: config.node.mesh_ip,
          version: PACKAGE_VERSION,
        },
      };
    case 'nft':
      return {
        options: {
          stateDir,
          backend: config.nft.backend,
          table: config.nft.table,
          adoptTable: config.nft.adopt_table,
          nft: config.nft.nft,
          meshCidrs: config.mesh.cidrs,
          reconcileMs: config.nft.reconcile_ms,
          checkMs: config.nft.check_ms,
          coalesceMs: config.nft.coalesce_ms,
        },
        // Applies wait for the transaction they are coalesced into: many at once.
        mailbox: { highWater: 16_384, concurrency: 16_384 },
      };
    case 'grants': {
      const g = config.grants;
      return {
        options: {
          stateDir,
          meshCidrs: config.mesh.cidrs,
          nonceTtlMs: g.nonce_ttl_ms,
          subscriberPerMinute: g.subscriber_per_minute,
          subscriberBurst: g.subscriber_burst,
          globalPerSecond: g.global_per_second,
          globalBurst: g.global_burst,
          auditLog:
            g.audit_log === '' ? join(stateDir, 'audit', 'grants.log') : resolve(g.audit_log),
          renewAt: g.renew_at,
          sweepMs: g.sweep_ms,
          reconcileMs: g.reconcile_ms,
          sandbox: sandboxOptions(config, stateDir),
        },
      };
    }
    default:
      return { options: { stateDir } };
  }
}

/** The supervisor's input for this config. */
export function supervisorInput(config: Config): SupervisorInput {
  const builtin = BUILTIN_ACTORS.map((name) => {
    const base = builtinSpec(name, config);
    const module = fileURLToPath(new URL(`../actors/${name}/actor.js`, import.meta.url));
    const tuned = childSpec(name, module, config.actors[name]);
    return {
      ...base,
      ...tuned,
      mailbox: { ...base.mailbox, ...tuned.mailbox },
      options: { ...base.options, ...tuned.options },
    };
  });
  const extra = config.actors.extra.map((x) => childSpec(x.name, x.module, x));
  const topology: Array<[string, string]> = TOPOLOGY.map(([a, b]) => [a, b]);
  for (const x of config.actors.extra) for (const peer of x.links) topology.push([x.name, peer]);
  return {
    strategy: config.supervisor.strategy,
    intensity: {
      maxRestarts: config.supervisor.max_restarts,
      periodMs: config.supervisor.period_seconds * 1000,
    },
    logLevel: config.node.log_level,
    children: [...builtin, ...extra],
    topology,
  };
}

/** The gossip actor's options (mesh.ts MeshOptions) from the [gossip] section. */
function gossipOptions(g: Config['gossip']): Record<string, unknown> {
  return {
    listen: g.listen,
    advertise: g.advertise,
    announce: g.announce,
    path: g.path,
    peers: g.peers,
    mode: g.mode,
    allowlist: g.allowlist === '' ? '' : resolve(g.allowlist),
    discover: g.discover,
    insecurePlaintext: g.insecure_plaintext,
    maxPeers: g.max_peers,
    maxPendingHandshakes: g.max_pending_handshakes,
    maxFrameBytes: g.max_frame_bytes,
    maxEntriesPerFrame: g.max_entries_per_frame,
    maxWantsInFlight: g.max_wants_in_flight,
    maxPeersPerIp: g.max_peers_per_ip,
    maxDialTargets: g.max_dial_targets,
    dialRatePerS: g.dial_rate_per_s,
    handshakeTimeoutMs: g.handshake_timeout_ms,
    idleTimeoutMs: g.idle_timeout_ms,
    antiEntropyMs: g.anti_entropy_ms,
    rateFrames: g.rate_frames_per_s,
    burstFrames: g.burst_frames,
    maxBufferedBytes: g.max_buffered_bytes,
    backoffBaseMs: g.backoff_base_ms,
    backoffMaxMs: g.backoff_max_ms,
  };
}

/** The grants actor's policy hook: sandbox limits, and the policies in config order. */
function sandboxOptions(config: Config, stateDir: string): Record<string, unknown> {
  const limits = (t: Partial<Config['sandbox']>) =>
    Object.fromEntries(
      Object.entries({
        memoryBytes: t.memory_mb === undefined ? undefined : t.memory_mb * 1024 * 1024,
        deadlineMs: t.deadline_ms,
        maxOutputBytes: t.max_output_bytes,
        maxStateBytes: t.max_state_bytes,
        inbox: t.inbox,
      }).filter(([, v]) => v !== undefined),
    );
  return {
    threads: config.sandbox.threads,
    limits: limits(config.sandbox),
    stateDir: join(stateDir, 'sandbox'),
    policies: config.policy.map((p) => ({
      name: p.name,
      module: resolve(p.module),
      limits: limits(p),
    })),
  };
}

function childSpec(name: string, module: string, t: Config['actors']['journal']): ChildSpecInput {
  const spec: ChildSpecInput = { name, module };
  if (!t) return spec;
  if (t.restart) spec.restart = t.restart;
  if (t.shutdown_ms !== undefined) spec.shutdownMs = t.shutdown_ms;
  if (t.init_timeout_ms) spec.initTimeoutMs = t.init_timeout_ms;
  if (t.ask_timeout_ms) spec.askTimeoutMs = t.ask_timeout_ms;
  if (t.mailbox_high_water) spec.mailbox = { highWater: t.mailbox_high_water };
  if (t.heartbeat_interval_ms || t.heartbeat_timeout_ms) {
    spec.heartbeat = {
      ...(t.heartbeat_interval_ms ? { intervalMs: t.heartbeat_interval_ms } : {}),
      ...(t.heartbeat_timeout_ms ? { timeoutMs: t.heartbeat_timeout_ms } : {}),
    };
  }
  if (t.max_old_generation_mb)
    spec.resourceLimits = { maxOldGenerationSizeMb: t.max_old_generation_mb };
  if (t.options) spec.options = t.options;
  return spec;
}
