/**
 * A LAN of network namespaces for multi-host tests (root only): one
 * namespace per host, each with `eth0` on 10.x.y.(i+1)/24, plugged by a
 * veth pair into a bridge that lives in a namespace of its own. Cutting a
 * host's cable is `ip link set pI down` on the bridge side.
 *
 * Names carry this process's pid (`mngs-PID-…`), so parallel runs do not
 * collide, and namespaces left by a run that was killed (its pid gone) are
 * swept at the next setup. `impair(i, …)` degrades host i's cable (loss,
 * delay, a rate limit) in both directions; `clear(i)` restores it.
 * `destroy()` removes everything (deleting a namespace deletes its veth
 * ends); it also runs at process exit.
 */
import { execFileSync } from 'node:child_process';
import type { ExecFileSyncOptions } from 'node:child_process';
import { processAlive } from '../../supervisor/state-lock.js';

const PREFIX = 'mngs-';

function ip(...args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(`ip ${args.join(' ')}: ${stderr || (err as Error).message}`);
  }
}

/** `ip netns exec NS CMD ARGS…`; throws with the command's stderr. */
function inNs(ns: string, cmd: string, args: string[], input?: string): void {
  const opts: ExecFileSyncOptions = { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], input };
  try {
    execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], opts);
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(`${cmd} ${args.join(' ')} (in ${ns}): ${stderr || (err as Error).message}`);
  }
}

function namespaces(): string[] {
  return ip('netns', 'list')
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n !== '');
}

/** Delete namespaces left by earlier runs whose process is gone. */
export function sweepStaleNamespaces(): string[] {
  const swept: string[] = [];
  for (const ns of namespaces()) {
    const m = /^mngs-(\d+)-/.exec(ns);
    if (!m || processAlive(Number(m[1]))) continue;
    try {
      ip('netns', 'del', ns);
      swept.push(ns);
    } catch {
      // Someone else swept it first.
    }
  }
  return swept;
}

export interface Host {
  /** Namespace name: run a command in it with `ip netns exec NAME …`. */
  ns: string;
  ip: string;
  /** The host's port on the bridge (in the bridge namespace). */
  cable: string;
}

/** What `impair` does to a cable, each direction on its own. */
export interface Impairment {
  /** Packets dropped, percent. */
  lossPct?: number;
  /** Added one-way delay, ms, and its jitter (netem only). */
  delayMs?: number;
  jitterMs?: number;
  /** A rate limit, kbit/s: queueing delay once the link is busy. */
  rateKbit?: number;
}

/**
 * How `impair` applied it. `netem`: tc netem on both veth ends (loss, delay,
 * jitter, rate). Kernels without sch_netem get `nft+htb`: loss is an nft
 * `numgen random` drop in the host's namespace, the rate an htb class on both
 * ends; delay and jitter cannot be had there and are left out.
 */
export type ImpairMode = 'netem' | 'nft+htb';

let netemMissing = false;

export class NetnsLan {
  readonly bridgeNs: string;
  readonly hosts: Host[] = [];
  private destroyed = false;
  private readonly onExit = () => this.destroy();

  private constructor(readonly tag: string) {
    this.bridgeNs = `${tag}br`;
    process.on('exit', this.onExit);
  }

  /** Create `n` hosts on 10.`net`.0.0/24 (addresses .1 … .n). */
  static create(n: number, net = 77): NetnsLan {
    sweepStaleNamespaces();
    const lan = new NetnsLan(`${PREFIX}${process.pid}-`);
    try {
      ip('netns', 'add', lan.bridgeNs);
      ip('-n', lan.bridgeNs, 'link', 'add', 'br0', 'type', 'bridge');
      ip('-n', lan.bridgeNs, 'link', 'set', 'br0', 'up');
      for (let i = 0; i < n; i++) {
        const host: Host = { ns: `${lan.tag}h${i}`, ip: `10.${net}.0.${i + 1}`, cable: `p${i}` };
        ip('netns', 'add', host.ns);
        lan.hosts.push(host);
        ip('-n', host.ns, 'link', 'set', 'lo', 'up');
        ip(
          '-n',
          lan.bridgeNs,
          'link',
          'add',
          host.cable,
          'type',
          'veth',
          'peer',
          'name',
          'eth0',
          'netns',
          host.ns,
        );
        ip('-n', lan.bridgeNs, 'link', 'set', host.cable, 'master', 'br0');
        ip('-n', lan.bridgeNs, 'link', 'set', host.cable, 'up');
        ip('-n', host.ns, 'addr', 'add', `${host.ip}/24`, 'dev', 'eth0');
        ip('-n', host.ns, 'link', 'set', 'eth0', 'up');
      }
    } catch (err) {
      lan.destroy();
      throw err;
    }
    return lan;
  }

  /** Unplug host i from the bridge: its packets go nowhere, nobody's reach it. */
  cut(i: number): void {
    ip('-n', this.bridgeNs, 'link', 'set', this.hosts[i]!.cable, 'down');
  }

  /** Plug host i back in. */
  heal(i: number): void {
    ip('-n', this.bridgeNs, 'link', 'set', this.hosts[i]!.cable, 'up');
  }

  /**
   * Degrade host i's cable in both directions (replacing any earlier
   * impairment of it): on the host's eth0 (what it sends) and on its bridge
   * port (what it receives).
   */
  impair(i: number, imp: Impairment): ImpairMode {
    this.clear(i);
    const h = this.hosts[i]!;
    const ends: Array<[string, string]> = [
      [h.ns, 'eth0'],
      [this.bridgeNs, h.cable],
    ];
    if (!netemMissing) {
      const args = ['root', 'netem'];
      if (imp.lossPct) args.push('loss', `${imp.lossPct}%`);
      if (imp.delayMs) args.push('delay', `${imp.delayMs}ms`, `${imp.jitterMs ?? 0}ms`);
      if (imp.rateKbit) args.push('rate', `${imp.rateKbit}kbit`);
      try {
        for (const [ns, dev] of ends) inNs(ns, 'tc', ['qdisc', 'replace', 'dev', dev, ...args]);
        return 'netem';
      } catch (err) {
        if (!/qdisc kind is unknown/i.test((err as Error).message)) throw err;
        netemMissing = true;
      }
    }
    if (imp.lossPct) {
      const drop = `numgen random mod 100 < ${Math.round(imp.lossPct)} drop`;
      inNs(
        h.ns,
        'nft',
        ['-f', '-'],
        [
          'table inet impair {',
          `  chain in { type filter hook input priority -300; ${drop}; }`,
          `  chain out { type filter hook output priority -300; ${drop}; }`,
          '}',
          '',
        ].join('\n'),
      );
    }
    if (imp.rateKbit) {
      const rate = `${imp.rateKbit}kbit`;
      for (const [ns, dev] of ends) {
        inNs(ns, 'tc', `qdisc replace dev ${dev} root handle 1: htb default 1 r2q 1`.split(' '));
        inNs(
          ns,
          'tc',
          `class add dev ${dev} parent 1: classid 1:1 htb rate ${rate} ceil ${rate}`.split(' '),
        );
      }
    }
    return 'nft+htb';
  }

  /** Undo `impair(i)`: the cable as good as new. Safe to call on a clean one. */
  clear(i: number): void {
    const h = this.hosts[i]!;
    for (const [ns, dev] of [
      [h.ns, 'eth0'],
      [this.bridgeNs, h.cable],
    ] as const) {
      try {
        inNs(ns, 'tc', ['qdisc', 'del', 'dev', dev, 'root']);
      } catch {
        // No qdisc of ours there.
      }
    }
    try {
      inNs(h.ns, 'nft', ['delete', 'table', 'inet', 'impair']);
    } catch {
      // No table.
    }
  }

  /** Namespaces of this LAN that still exist (empty after destroy). */
  remaining(): string[] {
    return namespaces().filter((ns) => ns.startsWith(this.tag));
  }

  /** Delete every namespace of this LAN; safe to call twice. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    process.off('exit', this.onExit);
    for (const ns of [...this.hosts.map((h) => h.ns), this.bridgeNs]) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // Not created, or already gone.
      }
    }
  }
}
