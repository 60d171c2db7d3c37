/**
 * Crash consistency (issue 9): the whole node process SIGKILLed at a random
 * moment under mixed load, then started again on the same state directory.
 *
 * Two real `meshnode start` processes on loopback, the nft executor's memory
 * backend: P (the one killed) and C, which dials P and stays up. Load while
 * P runs, all over the admin socket:
 *  - local appends on P (`offer` of a fresh service: one journal append each);
 *  - ingest on P: C keeps appending its own entries, which gossip hands to P;
 *  - grants: C activates its subscriptions to P's auto offers round-robin, so
 *    P decides, applies the element and appends a `grant` entry per request.
 * After each restart of P: `journal verify` passes; every append P
 * acknowledged and every grant C was answered with are in P's journal; each
 * acknowledged grant is live; the executor's elements equal the live grants;
 * P catches up with C's feed. Recovery time = SIGKILL → P answering
 * `journal.status` on its admin socket.
 *
 * 5 iterations under `npm test`, 50 with MESHNODE_LONG=1. Seeded (MESHNODE_SEED).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { JournalStore } from '../../actors/journal/store.js';
import { AdminClient } from '../../supervisor/admin-client.js';
import { freePort, gossipUrl } from '../helpers/mesh.js';
import { startNode } from '../helpers/meshnode.js';
import type { RunningNode } from '../helpers/meshnode.js';
import { describe, sleep, tempDir, until } from '../helpers/test.js';
import { LONG, report, rng, seedOf } from './report.js';

const ITERATIONS = LONG ? 50 : 5;
const SERVICES = 4;
const test = describe('reliability/crash', (LONG ? 1800 : 150) * 1000);

function configToml(stateDir: string, port: number, peers: string[]): string {
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

async function nodeIn(dir: string, port: number, peers: string[]): Promise<RunningNode> {
  writeFileSync(join(dir, 'meshnode.toml'), configToml(join(dir, 'state'), port, peers));
  return startNode({ dir });
}

async function client(node: RunningNode): Promise<AdminClient> {
  return AdminClient.connect(node.socket);
}

/** Retry while the failure is one time fixes (replication, self-sync, a link coming up). */
async function retry<T>(what: string, fn: () => Promise<T>, ms = 20_000): Promise<T> {
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

interface Acked {
  appends: string[];
  grants: string[];
}

test('SIGKILL of the whole node under mixed load: nothing acknowledged lost, firewall = live grants', async () => {
  const seed = seedOf();
  const r = rng(seed);
  console.log(`crash: seed ${seed} (MESHNODE_SEED=${seed} replays it), ${ITERATIONS} iterations`);
  const pDir = tempDir('meshnode-crash-p-');
  const cDir = tempDir('meshnode-crash-c-');
  const [pPort, cPort] = [await freePort(), await freePort()];
  let p = await nodeIn(pDir, pPort, []);
  const c = await nodeIn(cDir, cPort, [gossipUrl(pPort)]);
  const acked: Acked = { appends: [], grants: [] };
  const recoveries: number[] = [];
  const grantedSubs = new Set<string>();
  let failures = 0;
  const served = { appends: 0, grants: 0, ingested: 0 };
  try {
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

      // Restart and time it: SIGKILL → the admin socket answers journal.status.
      const restarting = nodeIn(pDir, pPort, []);
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
        const report = (await pc.call('journal.verify')) as { ok: boolean };
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
        assert.equal(
          list.grants.map(key).sort(),
          g.live.map(key).sort(),
          `iteration ${it}: nft elements = live grants`,
        );
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
      },
    });
    await Promise.all([p.stop(), c.stop()]);
  }
  assert.is(recoveries.length, ITERATIONS);
  assert.ok(acked.appends.length > 0, 'some appends were acknowledged');
  assert.ok(acked.grants.length > 0, 'some grants were acknowledged');
});

test.run();
