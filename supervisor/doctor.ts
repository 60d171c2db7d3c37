/**
 * `meshnode doctor`: what the node needs, checked from where the operator
 * stands, each line ok / warn / fail with the fix. What it looks at: the
 * config, nft and the kernel's features, the node's capabilities (from
 * /proc of the running node), which firewall backend runs and why, the
 * admin socket's mode, the gossip and metrics ports, the disk under the
 * state directory, the clock (NTP, and peers' entries dated ahead of ours),
 * the node's own sync state and its peers' reachability. Exit 0 unless a
 * check fails (1).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync, statfsSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import type { GossipStatus } from '../runtime/protocol/gossip.js';
import { AdminClient } from './admin-client.js';
import { okLine, safe } from './cli-format.js';
import { adminSocketPath, loadConfig } from './config.js';
import type { Config } from './config.js';

/** CAP_NET_ADMIN's bit in CapEff: what nft needs. */
const CAP_NET_ADMIN = 12n;
/** Free space under the state dir below which appends may soon fail. */
const DISK_WARN_BYTES = 1024 ** 3;
const DISK_FAIL_BYTES = 100 * 1024 ** 2;
/** A peer's entry dated this far ahead of our clock means one of the two clocks is off. */
const SKEW_WARN_MS = 60_000;
/** Recent entries looked at for skew. */
const SKEW_SAMPLE = 500;
/** An nft batch with what meshnode's table uses (sets with timeouts, interval-free ipv4/ipv6 addresses), checked by nft -c. */
const FEATURE_PROBE = `table inet meshnode_doctor_probe {
  set probe4 { type ipv4_addr; flags timeout; }
  set probe6 { type ipv6_addr; flags timeout; }
  chain input { type filter hook input priority 0; policy accept; tcp dport 1 ip saddr @probe4 accept; }
}
`;

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  fix?: string;
}

const run = promisify(execFile);

export async function runDoctor(configPath: string | undefined, json: boolean): Promise<number> {
  const checks = await diagnose(configPath);
  if (json) {
    const healthy = !checks.some((c) => c.status === 'fail');
    process.stdout.write(okLine({ healthy, checks }));
  } else {
    process.stdout.write(renderChecks(checks));
  }
  return checks.some((c) => c.status === 'fail') ? 1 : 0;
}

export function renderChecks(checks: Check[]): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  return (
    checks
      .map(
        (c) =>
          `${c.status.padEnd(4)}  ${c.name.padEnd(width)}  ${c.detail}${c.fix ? `\n${''.padEnd(6 + width)}  fix: ${c.fix}` : ''}`,
      )
      .join('\n') + '\n'
  );
}

/** Every check, in the order an operator would go through them. */
export async function diagnose(configPath: string | undefined): Promise<Check[]> {
  const checks: Check[] = [];
  let config: Config;
  try {
    config = loadConfig(configPath);
    checks.push({
      name: 'config',
      status: 'ok',
      detail: configPath
        ? `${configPath} is valid`
        : 'the embedded defaults (no config file found)',
    });
  } catch (err) {
    checks.push({
      name: 'config',
      status: 'fail',
      detail: (err as Error).message,
      fix: `meshnode config check ${configPath ?? 'FILE'} lists every problem`,
    });
    return checks;
  }
  const node = await askNode(config);
  checks.push(await nftCheck(config));
  checks.push(capabilityCheck(config, node));
  checks.push(backendCheck(config, node));
  checks.push(socketCheck(config, node));
  checks.push(...(await portChecks(config, node)));
  checks.push(diskCheck(config));
  checks.push(...(await clockChecks(node)));
  checks.push(...peerChecks(node));
  return checks;
}

/** What the running node says (null parts: not running, or that actor is down). */
interface NodeView {
  running: boolean;
  pid: number | null;
  status: {
    firewall?: { backend: string; enforced: boolean; why?: string } | null;
    gossip?: { listening: number } | null;
  } | null;
  peers: GossipStatus | null;
  tail: Array<{ entry: { author: string; ts: number } }>;
  did: string | null;
}

async function askNode(config: Config): Promise<NodeView> {
  const view: NodeView = {
    running: false,
    pid: null,
    status: null,
    peers: null,
    tail: [],
    did: null,
  };
  let client: AdminClient;
  try {
    client = await AdminClient.connect(adminSocketPath(config));
  } catch {
    return view;
  }
  try {
    const st = (await client.call('status', {}, 10_000)) as NodeView['status'] & {
      pid: number;
      did: string | null;
    };
    view.running = true;
    view.pid = st.pid;
    view.status = st;
    view.did = st.did;
    const peers = (await client.call('peers', {}, 10_000).catch(() => null)) as GossipStatus | null;
    view.peers = peers && 'peers' in peers ? peers : null;
    view.tail = ((await client
      .call('journal.tail', { last: SKEW_SAMPLE }, 10_000)
      .catch(() => [])) ?? []) as NodeView['tail'];
  } catch {
    // Connected but not answering: reported by the checks that needed it.
  } finally {
    client.close();
  }
  return view;
}

async function nftCheck(config: Config): Promise<Check> {
  const nft = config.nft.nft;
  if (config.nft.backend === 'memory') {
    return { name: 'nft', status: 'ok', detail: 'not needed: [nft] backend = "memory"' };
  }
  if (!existsSync(nft)) {
    return {
      name: 'nft',
      status: config.nft.backend === 'nft' ? 'fail' : 'warn',
      detail: `${nft} not found`,
      fix: 'apt-get install nftables',
    };
  }
  let version = '';
  try {
    version = (await run(nft, ['--version'], { timeout: 5000 })).stdout.trim();
  } catch (err) {
    return {
      name: 'nft',
      status: 'fail',
      detail: `${nft} --version failed: ${(err as Error).message}`,
    };
  }
  try {
    const child = run(nft, ['-c', '-f', '-'], { timeout: 5000 });
    child.child.stdin?.end(FEATURE_PROBE);
    await child;
    return {
      name: 'nft',
      status: 'ok',
      detail: `${version}; the kernel accepts timeout sets and the input hook`,
    };
  } catch (err) {
    const text = String((err as { stderr?: string }).stderr ?? (err as Error).message);
    const denied = /Operation not permitted|EPERM|permission/i.test(text);
    return {
      name: 'nft',
      status: 'warn',
      detail: denied
        ? `${version}; the kernel's features cannot be probed without CAP_NET_ADMIN`
        : `${version}; the kernel refused the probe: ${safe(text.split('\n')[0], 160)}`,
      ...(denied ? { fix: 'run meshnode doctor as root to probe the kernel' } : {}),
    };
  }
}

function capabilityCheck(config: Config, node: NodeView): Check {
  const pid = node.pid ?? process.pid;
  const whose = node.pid ? `the node (pid ${pid})` : 'this shell (the node is not running)';
  let eff: bigint;
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('CapEff:'));
    eff = BigInt(`0x${line!.split(/\s+/)[1]}`);
  } catch {
    return { name: 'capabilities', status: 'warn', detail: `cannot read /proc/${pid}/status` };
  }
  const netAdmin = (eff >> CAP_NET_ADMIN) & 1n;
  const hex = eff.toString(16).padStart(16, '0');
  if (config.nft.backend === 'memory') {
    return {
      name: 'capabilities',
      status: 'ok',
      detail: `${whose}: CapEff ${hex}${netAdmin ? ' (CAP_NET_ADMIN held, and not needed by the memory backend)' : ''}`,
    };
  }
  return netAdmin
    ? { name: 'capabilities', status: 'ok', detail: `${whose} holds CAP_NET_ADMIN (CapEff ${hex})` }
    : {
        name: 'capabilities',
        status: config.nft.backend === 'nft' ? 'fail' : 'warn',
        detail: `${whose} lacks CAP_NET_ADMIN (CapEff ${hex}): nft cannot manage the table`,
        fix: 'run under the installed unit (AmbientCapabilities=CAP_NET_ADMIN), or as root',
      };
}

function backendCheck(config: Config, node: NodeView): Check {
  const fw = node.status?.firewall;
  if (!node.running || !fw) {
    return {
      name: 'firewall',
      status: 'warn',
      detail: `node not running; configured backend ${config.nft.backend}`,
      fix: 'start it: systemctl start meshnode (or meshnode start)',
    };
  }
  return fw.enforced
    ? { name: 'firewall', status: 'ok', detail: `nft enforces grants: ${safe(fw.why, 160)}` }
    : {
        name: 'firewall',
        status: 'warn',
        detail: `${fw.backend}: NOTHING ENFORCED${fw.why ? ` (${safe(fw.why, 160)})` : ''}`,
        fix: 'install nftables and run with CAP_NET_ADMIN, then set [nft] backend = "nft"',
      };
}

function socketCheck(config: Config, node: NodeView): Check {
  const path = adminSocketPath(config);
  if (!existsSync(path)) {
    return {
      name: 'admin socket',
      status: node.running ? 'fail' : 'warn',
      detail: `${path} does not exist`,
      fix: node.running ? 'the node runs elsewhere: pass --config or --socket' : 'start the node',
    };
  }
  const st = statSync(path);
  const mode = st.mode & 0o777;
  const modeText = mode.toString(8).padStart(4, '0');
  if (mode & 0o007) {
    return {
      name: 'admin socket',
      status: 'fail',
      detail: `${path} is mode ${modeText}: anyone on this machine can steer the node`,
      fix: `chmod o-rwx ${path} (and restart the node: it creates the socket 0600 or 0660)`,
    };
  }
  return {
    name: 'admin socket',
    status: node.running ? 'ok' : 'warn',
    detail: `${path} mode ${modeText}, uid ${st.uid} gid ${st.gid}${node.running ? '' : ' (no node answers on it)'}`,
  };
}

async function portChecks(config: Config, node: NodeView): Promise<Check[]> {
  const out: Check[] = [];
  const entries: Array<[string, string]> = [
    ['gossip port', config.gossip.listen],
    ['metrics port', config.metrics.listen],
  ];
  for (const [name, listen] of entries) {
    if (listen === '') {
      out.push({ name, status: 'ok', detail: 'not listening (disabled in the config)' });
      continue;
    }
    const host = listen.slice(0, listen.lastIndexOf(':')).replace(/^\[|\]$/g, '');
    const port = Number(listen.slice(listen.lastIndexOf(':') + 1));
    if (node.running) {
      const bound = name === 'gossip port' ? node.status?.gossip?.listening : port;
      out.push({
        name,
        status: 'ok',
        detail: `${listen} is the node's (listening on ${bound ?? port})`,
      });
      continue;
    }
    if (port === 0) {
      out.push({ name, status: 'ok', detail: `${listen}: any free port is taken at start` });
      continue;
    }
    const free = await portFree(host, port);
    out.push(
      free
        ? { name, status: 'ok', detail: `${listen} is free` }
        : {
            name,
            status: 'fail',
            detail: `${listen} is in use by another process`,
            fix: `ss -ltnp 'sport = :${port}' shows who; change ${name === 'gossip port' ? '[gossip] listen' : '[metrics] listen'}`,
          },
    );
  }
  return out;
}

function diskCheck(config: Config): Check {
  const dir = resolve(config.node.state_dir);
  let where = dir;
  while (!existsSync(where) && where !== '/') where = resolve(where, '..');
  const fs = statfsSync(where);
  const free = fs.bavail * fs.bsize;
  const share = fs.bavail / Math.max(1, fs.blocks);
  const detail = `${(free / 1024 ** 3).toFixed(1)} GiB free (${Math.round(share * 100)} %) under ${where}`;
  if (free < DISK_FAIL_BYTES) {
    return {
      name: 'disk',
      status: 'fail',
      detail,
      fix: 'free space: the journal refuses appends when the disk is full',
    };
  }
  if (free < DISK_WARN_BYTES || share < 0.1) {
    return { name: 'disk', status: 'warn', detail, fix: 'free space before the journal fills it' };
  }
  return { name: 'disk', status: 'ok', detail };
}

async function clockChecks(node: NodeView): Promise<Check[]> {
  const out: Check[] = [];
  try {
    const { stdout } = await run('timedatectl', ['show', '-p', 'NTPSynchronized', '--value'], {
      timeout: 5000,
    });
    out.push(
      stdout.trim() === 'yes'
        ? { name: 'clock', status: 'ok', detail: 'NTP synchronized' }
        : {
            name: 'clock',
            status: 'warn',
            detail: 'not NTP synchronized: leases and invite expiry follow this clock',
            fix: 'systemctl enable --now systemd-timesyncd (or chrony)',
          },
    );
  } catch {
    out.push({
      name: 'clock',
      status: 'warn',
      detail: 'timedatectl is not available: NTP state unknown',
    });
  }
  if (node.running) {
    const now = Date.now();
    const ahead = node.tail.filter(
      (r) => r.entry.author !== node.did && r.entry.ts - now > SKEW_WARN_MS,
    );
    const worst = ahead.reduce((m, r) => Math.max(m, r.entry.ts - now), 0);
    out.push(
      ahead.length === 0
        ? {
            name: 'peer clocks',
            status: 'ok',
            detail: `no peer entry of the last ${node.tail.length} is dated ahead of this clock`,
          }
        : {
            name: 'peer clocks',
            status: 'warn',
            detail: `${ahead.length} peer entries dated up to ${Math.round(worst / 1000)} s ahead of this clock`,
            fix: 'this clock is slow, or theirs fast: check NTP on both',
          },
    );
  }
  return out;
}

function peerChecks(node: NodeView): Check[] {
  const g = node.peers;
  if (!node.running || !g) return [];
  const open = g.peers.filter((p) => p.state === 'open').length;
  const failing = g.dialing.filter((d) => d.lastClose !== null);
  const out: Check[] = [
    g.selfSynced
      ? {
          name: 'self sync',
          status: 'ok',
          detail: 'this node has confirmed its own feed head with a peer (or has none to confirm)',
        }
      : {
          name: 'self sync',
          status: 'warn',
          detail: 'waiting for a peer to confirm its own feed head: appends as this node wait',
          fix: 'reach a peer; or, knowing the risk of a fork: meshnode journal forceSelfHead',
        },
  ];
  out.push(
    failing.length === 0
      ? {
          name: 'peers',
          status: 'ok',
          detail: `${open} links open, ${g.dialing.length} endpoints being dialed`,
        }
      : {
          name: 'peers',
          status: 'warn',
          detail: `${open} links open; ${failing.length} endpoints failing: ${failing
            .slice(0, 3)
            .map(
              (d) => `${safe(d.url, 60)} (${d.lastClose!.code} ${safe(d.lastClose!.reason, 40)})`,
            )
            .join(', ')}`,
          fix: 'meshnode peers shows each; meshnode undial URL stops dialing one',
        },
  );
  return out;
}

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => res(true)));
  });
}
