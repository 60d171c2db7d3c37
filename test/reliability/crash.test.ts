/**
 * Crash consistency (issue 9): the whole node process SIGKILLed at a random
 * moment under mixed load, then started again on the same state directory.
 *
 * Two real `meshnode start` processes: P (the one killed) and C, which
 * dials P and stays up. As root (always under CI=true), each runs in a
 * network namespace of its own on a bridge (test/helpers/netns.ts, 10.79.0.x)
 * and P runs the nft executor's kernel backend: its table lives in P's
 * namespace and survives the SIGKILL, as it would on a real host. Without
 * root both run on loopback with the memory backend, and the kernel checks
 * are skipped (said so in the output). Load while P runs, all over the
 * admin socket:
 *  - local appends on P (`offer` of a fresh service: one journal append each);
 *  - ingest on P: C keeps appending its own entries, which gossip hands to P;
 *  - grants: C activates its subscriptions to P's auto offers round-robin, so
 *    P decides, applies the element and appends a `grant` entry per request.
 * After each restart of P: `journal verify` passes; every append P
 * acknowledged and every grant C was answered with are in P's journal; each
 * acknowledged grant is live; the executor's elements equal the live grants;
 * P catches up with C's feed. Kernel mode adds: the elements of P's sets as
 * the kernel lists them (`nft -j list table` inside P's namespace) equal
 * the live grants exactly — no stale element, none missing, each with a
 * timeout (a lease, never a permanent accept) — and are not empty once a
 * grant was acknowledged. To prove the restart reconciles rather than
 * merely keeps what the kernel had, while P is dead the test also puts a
 * stale element (an address nobody was granted) into one of P's sets and,
 * when there is one, takes a granted element out: the restarted node must
 * remove the first and restore the second. Recovery time = SIGKILL → P
 * answering `journal.status` on its admin socket.
 *
 * 5 iterations under `npm test`, 50 with MESHNODE_LONG=1. Seeded (MESHNODE_SEED).
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { JournalStore } from '../../actors/journal/store.js';
import { AdminClient } from '../../supervisor/admin-client.js';
import { freePort, gossipUrl } from '../helpers/mesh.js';
import { startNode, verifyOver } from '../helpers/meshnode.js';
import type { RunningNode } from '../helpers/meshnode.js';
import { NetnsLan } from '../helpers/netns.js';
import { listTable } from '../helpers/nft.js';
import { parseOurName } from '../../actors/nft/names.js';
import { describe, rootOnly, sleep, tempDir, until } from '../helpers/test.js';
import { configToml, nodeIn, retry } from './loopback.js';
import { LONG, report, rng, seedOf } from './report.js';

const ITERATIONS = LONG ? 50 : 5;
const SERVICES = 4;
const test = describe('reliability/crash', (LONG ? 1800 : 150) * 1000);

/** As root: P and C on a bridge, 10.NET.0.1 and .2, each in its own namespace. */
const NET = 79;
/** Never granted: the stale element put into P's set while P is dead. */
const STALE_IP = `10.${NET}.0.99`;
const TABLE = 'meshnode';

/** `toml` with `from` replaced by `to`; throws if `from` is not there (loopback.ts changed). */
function swap(toml: string, from: string, to: string): string {
  if (!toml.includes(from)) throw new Error(`crash: config has no ${JSON.stringify(from)}`);
  return toml.replace(from, to);
}

/** Start (or restart) a node in `dir`: on loopback, or inside `ns` at `ip` with `backend`. */
async function startIn(
  dir: string,
  port: number,
  peers: string[],
  at?: { ns: string; ip: string; backend: 'nft' | 'memory' },
): Promise<RunningNode> {
  if (!at) return nodeIn(dir, port, peers);
  let toml = configToml(join(dir, 'state'), port, peers);
  toml = swap(toml, 'listen = "127.0.0.1:', `listen = "${at.ip}:`);
  toml = swap(toml, 'cidrs = ["127.0.0.0/8"]', `cidrs = ["10.${NET}.0.0/24"]`);
  toml = swap(toml, 'backend = "memory"', `backend = "${at.backend}"`);
  writeFileSync(join(dir, 'meshnode.toml'), toml);
  return startNode({ dir, ns: at.ns });
}

/** Every element of P's grant sets as the kernel lists them: `port ip` → seconds left. */
function kernelElements(ns: string): Map<string, number> {
  const listing = listTable(ns, TABLE);
  assert.ok(listing.exists, `table inet ${TABLE} exists in P's namespace`);
  const out = new Map<string, number>();
  for (const [name, elems] of listing.sets) {
    const ours = parseOurName(name);
    if (!ours || ours.kind === 'drop') continue;
    for (const [ip, expires] of elems) out.set(`${ours.port} ${ip}`, expires);
  }
  return out;
}

/** nft in P's namespace (the test's own edits of P's table while P is dead). */
function nftIn(ns: string, batch: string): void {
  execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], {
    input: batch,
    stdio: ['pipe', 'ignore', 'pipe'],
  });
}

async function client(node: RunningNode): Promise<AdminClient> {
  return AdminClient.connect(node.socket);
}

interface Acked {
  appends: string[];
  grants: string[];
}

test('SIGKILL of the whole node under mixed load: nothing acknowledged lost, firewall = live grants', async () => {
  const seed = seedOf();
  const r = rng(seed);
  console.log(`crash: seed ${seed} (MESHNODE_SEED=${seed} replays it), ${ITERATIONS} iterations`);
  const noRoot = rootOnly();
  if (noRoot)
    console.log(
      `crash: kernel nftables checks SKIPPED (${noRoot}): P runs the memory backend on loopback`,
    );
  const lan = noRoot ? null : NetnsLan.create(2, NET);
  const pAt = lan
    ? { ns: lan.hosts[0]!.ns, ip: lan.hosts[0]!.ip, backend: 'nft' as const }
    : undefined;
  const cAt = lan
    ? { ns: lan.hosts[1]!.ns, ip: lan.hosts[1]!.ip, backend: 'memory' as const }
    : undefined;
  const pDir = tempDir('meshnode-crash-p-');
  const cDir = tempDir('meshnode-crash-c-');
  const [pPort, cPort] = [await freePort(), await freePort()];
  const kernel = { checks: 0, elements: 0, staleRemoved: 0, missingRestored: 0 };
  let p = await startIn(pDir, pPort, [], pAt);
  let c: RunningNode | undefined;
  const acked: Acked = { appends: [], grants: [] };
  const recoveries: number[] = [];
  const grantedSubs = new Set<string>();
  let failures = 0;
  const served = { appends: 0, grants: 0, ingested: 0 };
  try {
    c = await startIn(cDir, cPort, [gossipUrl(pPort, pAt?.ip)], cAt);
    let pc = await client(p);
    const cc = await client(c);
    const pDid = ((await pc.call('journal.status')) as { did: string }).did;
    const cDid = ((await cc.call('journal.status')) as { did: string }).did;
    // P offers SERVICES auto-approved services; C subscribes to each.
    const subs: string[] = [];
    for (let i = 0; i < SERVICES; i++) {
      const svc = { service: `svc${i}`, port: 9000 + i, proto: 'tcp', mode: 'auto' };
      await pc.call('offer', { ...svc, leaseSeconds: 3600 });
      const sub = await retry('subscribe', () =>
        cc.call('subscribe', { provider: pDid, service: svc.service }),
      );
      subs.push((sub as { id: string }).id);
    }

    for (let it = 0; it < ITERATIONS; it++) {
      let running = true;
      const localAppends = async (k: number) => {
        let n = 0;
        while (running) {
          const requestId = `crash-${it}-${k}-${n++}`;
          try {
            const e = (await pc.call(
              'offer',
              {
                service: `s${it}x${k}x${n}`,
                port: 10000 + ((it * 7 + k * 131 + n) % 50000),
                proto: 'tcp',
                mode: 'manual',
                leaseSeconds: 60,
                // Appends under test: a port the node itself listens on must not refuse one.
                force: true,
                requestId,
              },
              5000,
            )) as { id: string };
            acked.appends.push(e.id);
            served.appends++;
          } catch {
            if (running) await sleep(20);
          }
        }
      };
      const foreign = async () => {
        let n = 0;
        while (running) {
          try {
            await cc.call(
              'offer',
              {
                service: `c${it}x${n++}`,
                port: 20000 + n,
                proto: 'udp',
                mode: 'manual',
                leaseSeconds: 60,
              },
              5000,
            );
            served.ingested++;
          } catch {
            await sleep(20);
          }
        }
      };
      const grants = async () => {
        let n = r.int(SERVICES);
        while (running) {
          try {
            const a = (await cc.call(
              'activate',
              { subscription: subs[n++ % SERVICES] },
              10_000,
            )) as {
              grant: string;
            };
            acked.grants.push(a.grant);
            grantedSubs.add(subs[(n - 1) % SERVICES]!);
            served.grants++;
          } catch {
            if (running) await sleep(50);
          }
        }
      };
      const loops = [localAppends(0), localAppends(1), foreign(), grants()];
      await sleep(300 + r.int(1500));
      p.proc.kill('SIGKILL');
      const killedAt = Date.now();
      await p.exited;
      running = false;
      pc.destroy();
      await Promise.all(loops);
      const cHead = ((await cc.call('journal.heads')) as Record<string, number>)[cDid] ?? 0;

      // The kernel kept P's table through the SIGKILL. Make it wrong both ways before the restart.
      let stale: string | null = null;
      let removed: string | null = null;
      if (pAt) {
        const before = kernelElements(pAt.ns);
        const svc = r.int(SERVICES);
        const set = `inet ${TABLE} tcp_${9000 + svc}_v4`;
        // `add` of the table and set is a no-op when P made them already (as the executor makes them).
        nftIn(
          pAt.ns,
          `add table inet ${TABLE}\nadd set ${set} { type ipv4_addr; flags timeout; }\n` +
            `add element ${set} { ${STALE_IP} timeout 1h }\n`,
        );
        stale = `${9000 + svc} ${STALE_IP}`;
        const granted = [...before.keys()].sort();
        if (granted.length > 0) {
          removed = r.pick(granted);
          const [port, ip] = removed.split(' ');
          nftIn(pAt.ns, `delete element inet ${TABLE} tcp_${port}_v4 { ${ip} }\n`);
        }
      }

      // Restart and time it: SIGKILL → the admin socket answers journal.status.
      const restarting = startIn(pDir, pPort, [], pAt);
      let answeredAt = 0;
      await until(
        async () => {
          try {
            const probe = await AdminClient.connect(p.socket);
            try {
              await probe.call('journal.status', {}, 2000);
              answeredAt = Date.now();
              return true;
            } finally {
              probe.destroy();
            }
          } catch {
            return false;
          }
        },
        30_000,
        'P answering after restart',
      );
      p = await restarting;
      recoveries.push(answeredAt - killedAt);
      pc = await client(p);

      try {
        const report = await verifyOver(pc);
        assert.ok(report.ok, `iteration ${it}: journal verify ${JSON.stringify(report)}`);
        // Every acknowledged append and grant is in P's journal (read-only, beside the writer).
        const store = await JournalStore.open(join(pDir, 'state', 'journal'), { readOnly: true });
        try {
          for (const id of acked.appends)
            assert.ok(store.byId(id), `iteration ${it}: acknowledged append ${id} lost`);
          for (const id of acked.grants)
            assert.ok(store.byId(id), `iteration ${it}: acknowledged grant ${id} lost`);
        } finally {
          await store.close();
        }
        // Each subscription's newest acknowledged grant is live (leases are an hour), and the
        // executor holds exactly the live grants.
        const g = (await pc.call('grants')) as {
          live: Array<{ subscription: string; grant: string; ip: string; port: number }>;
        };
        for (const sub of grantedSubs)
          assert.ok(
            g.live.some((x) => x.subscription === sub),
            `iteration ${it}: subscription ${sub} had an acknowledged grant and is not live`,
          );
        const list = (await pc.call('nft.list')) as {
          grants: Array<{ proto: string; port: number; ip: string }>;
        };
        const key = (x: { port: number; ip: string }) => `${x.port} ${x.ip}`;
        // What P warned about since its restart, for a failure's message.
        const warned = () =>
          JSON.stringify(
            p.lines
              .filter((l) => Number(l.level) >= 40 && !/NOTHING IS ENFORCED/.test(String(l.msg)))
              .slice(-8),
          );
        assert.equal(
          list.grants.map(key).sort(),
          g.live.map(key).sort(),
          `iteration ${it}: nft elements = live grants; P warned: ${warned()}`,
        );
        if (pAt) {
          // The kernel's own listing, in P's namespace, not P's word for it.
          const inKernel = kernelElements(pAt.ns);
          const live = g.live.map(key).sort();
          assert.equal(
            [...inKernel.keys()].sort(),
            live,
            `iteration ${it}: kernel set elements = live grants`,
          );
          if (grantedSubs.size > 0)
            assert.ok(inKernel.size > 0, `iteration ${it}: grants are live, the kernel sets empty`);
          for (const [k, expires] of inKernel)
            assert.ok(
              Number.isFinite(expires) && expires > 0,
              `iteration ${it}: kernel element ${k} has no lease (expires ${expires})`,
            );
          if (stale) assert.not.ok(inKernel.has(stale), `iteration ${it}: stale ${stale} kept`);
          if (removed && live.includes(removed))
            assert.ok(inKernel.has(removed), `iteration ${it}: deleted ${removed} not restored`);
          kernel.checks++;
          kernel.elements = inKernel.size;
          if (stale) kernel.staleRemoved++;
          if (removed && live.includes(removed)) kernel.missingRestored++;
        }
        // P catches up with C's feed (ingest resumes after the crash).
        await until(
          async () =>
            (((await pc.call('journal.heads')) as Record<string, number>)[cDid] ?? 0) >= cHead,
          20_000,
          `P ingesting C's feed up to ${cHead}`,
        );
      } catch (err) {
        failures++;
        throw err;
      }
    }
  } finally {
    const worst = recoveries.length ? Math.max(...recoveries) : null;
    const sorted = [...recoveries].sort((a, b) => a - b);
    report({
      suite: 'crash',
      iterations: recoveries.length,
      failures,
      worstRecoveryMs: worst,
      figures: {
        seed,
        'median recovery ms': sorted[Math.floor(sorted.length / 2)] ?? '-',
        'acked appends': acked.appends.length,
        'acked grants': acked.grants.length,
        'foreign appends': served.ingested,
        ...(pAt
          ? {
              'kernel checks': kernel.checks,
              'kernel elements': kernel.elements,
              'stale removed': kernel.staleRemoved,
              'missing restored': kernel.missingRestored,
            }
          : { kernel: 'skipped (not root)' }),
      },
    });
    await Promise.all([p.stop(), c?.stop()]);
    lan?.destroy();
  }
  assert.is(recoveries.length, ITERATIONS);
  assert.ok(acked.appends.length > 0, 'some appends were acknowledged');
  assert.ok(acked.grants.length > 0, 'some grants were acknowledged');
  if (pAt) assert.is(kernel.checks, ITERATIONS, 'the kernel was checked after every restart');
});

test.run();
