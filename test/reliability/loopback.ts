/**
 * Shared by the reliability suites that run real `meshnode start` processes
 * on loopback (crash, soak): the node config (short gossip timers, grant
 * rate limits out of the way, the nft memory backend), starting a node in a
 * directory with it, and retrying what only time fixes.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startNode } from '../helpers/meshnode.js';
import type { RunningNode } from '../helpers/meshnode.js';
import { sleep } from '../helpers/test.js';

export function configToml(stateDir: string, port: number, peers: string[]): string {
  return [
    '[node]',
    `state_dir = "${stateDir}"`,
    'log_level = "info"',
    '[metrics]',
    'listen = ""',
    '[gossip]',
    `listen = "127.0.0.1:${port}"`,
    `peers = [${peers.map((p) => `"${p}"`).join(', ')}]`,
    'discover = false',
    'anti_entropy_ms = 300',
    'backoff_base_ms = 50',
    'backoff_max_ms = 300',
    '[mesh]',
    'cidrs = ["127.0.0.0/8"]',
    '[grants]',
    'subscriber_per_minute = 1000000',
    'subscriber_burst = 1000000',
    'global_per_second = 1000000',
    'global_burst = 1000000',
    '[nft]',
    'backend = "memory"',
    '',
  ].join('\n');
}

/** Start (or restart) the node of `dir`: gossip on `port`, dialling `peers`. */
export async function nodeIn(
  dir: string,
  port: number,
  peers: string[],
  env?: Record<string, string>,
): Promise<RunningNode> {
  writeFileSync(join(dir, 'meshnode.toml'), configToml(join(dir, 'state'), port, peers));
  return startNode({ dir, ...(env ? { env } : {}) });
}

/** Retry while the failure is one time fixes (replication, self-sync, a link coming up). */
export async function retry<T>(what: string, fn: () => Promise<T>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > end) throw new Error(`${what}: ${(err as Error).message}`);
      await sleep(100);
    }
  }
}
