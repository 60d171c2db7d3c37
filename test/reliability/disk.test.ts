/**
 * Disk (issue 9), root only (it mounts a tmpfs): a real node process whose
 * state directory is on a nearly full 6 MiB tmpfs, appending over the admin
 * socket from several connections at once until the disk is full. Then:
 * appends are refused with ERR_STORAGE_FULL (never another code, never an
 * ack for something not on disk); the node is SIGKILLed while full and
 * started again on the still-full disk (it refuses, ERR_STORAGE_FULL: its
 * pid file cannot be written; then a little space is freed and it starts);
 * every acknowledged append is there
 * and `journal verify` passes; once ballast is freed, appends resume.
 * 1 cycle under `npm test`, 4 with MESHNODE_LONG=1 (each on a fresh mount).
 * journal/disk-full.test.ts covers the journal actor alone, in-process.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, statfsSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { JournalStore } from '../../actors/journal/store.js';
import { AdminClient } from '../../supervisor/admin-client.js';
import { startNode, verifyOver } from '../helpers/meshnode.js';
import type { RunningNode } from '../helpers/meshnode.js';
import { describe, rootOnly, tempDir } from '../helpers/test.js';
import { LONG, report } from './report.js';

const CYCLES = LONG ? 4 : 1;
const test = describe('reliability/disk', (LONG ? 600 : 120) * 1000);
const skipReason = rootOnly();
const CLIENTS = 4;
const MAX_APPENDS = 30_000;

function config(stateDir: string): string {
  return `[node]\nstate_dir = "${stateDir}"\n[metrics]\nlisten = ""\n[gossip]\nlisten = ""\n[nft]\nbackend = "memory"\n`;
}

if (skipReason) {
  test.skip(`journal of a real node on a full disk (${skipReason})`);
} else {
  test('full disk under concurrent appends, SIGKILL while full, restart: nothing acknowledged lost', async () => {
    const codes = new Map<string, number>();
    let acked = 0;
    let failures = 0;
    const recoveries: number[] = [];
    const restartOnFull = new Set<string>();
    try {
      for (let cycle = 0; cycle < CYCLES; cycle++) {
        const mount = tempDir('meshnode-disk-');
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=6m,mode=0700', 'tmpfs', mount]);
        let node: RunningNode | undefined;
        try {
          writeFileSync(join(mount, 'ballast'), Buffer.alloc(1024 * 1024, 0xa5));
          const dir = join(mount, 'node');
          mkdirSync(dir);
          writeFileSync(join(dir, 'meshnode.toml'), config(join(dir, 'state')));
          node = await startNode({ dir });
          // Leave ~256 KiB: a few hundred appends fill it (offers get slower as they grow in number).
          const fs = statfsSync(mount);
          const free = fs.bavail * fs.bsize;
          writeFileSync(
            join(mount, 'ballast2'),
            Buffer.alloc(Math.max(0, free - 256 * 1024), 0x5a),
          );
          const ids: string[] = [];
          let full = 0;
          let n = 0;
          const worker = async () => {
            const c = await AdminClient.connect(node!.socket);
            try {
              while (full < 20 && n < MAX_APPENDS) {
                const k = n++;
                try {
                  const e = (await c.call(
                    'offer',
                    {
                      service: `d${cycle}x${k}`,
                      port: 1 + (k % 65000),
                      proto: 'tcp',
                      mode: 'manual',
                      leaseSeconds: 60,
                      // Appends under test, not the guard (ports 22 and live ones).
                      force: true,
                      requestId: `disk-${cycle}-${k}`,
                    },
                    10_000,
                  )) as { id: string };
                  ids.push(e.id);
                } catch (err) {
                  const code = String((err as { code?: unknown }).code);
                  codes.set(code, (codes.get(code) ?? 0) + 1);
                  if (code === 'ERR_STORAGE_FULL') full++;
                  else throw err;
                }
              }
            } finally {
              c.destroy();
            }
          };
          const progress = setInterval(
            () =>
              console.log(
                `disk: ${ids.length} acked, ${full} full, codes ${JSON.stringify([...codes])}`,
              ),
            3000,
          );
          await Promise.all(Array.from({ length: CLIENTS }, worker)).finally(() =>
            clearInterval(progress),
          );
          acked += ids.length;
          assert.ok(full > 0, `cycle ${cycle}: the disk filled (${ids.length} appends)`);
          assert.equal(
            [...codes.keys()].filter((c) => c !== 'ERR_STORAGE_FULL'),
            [],
            'refusals are ERR_STORAGE_FULL only',
          );

          // SIGKILL while full; start again on the full disk.
          node.proc.kill('SIGKILL');
          await node.exited;
          // Starting again on the still-full disk: it starts, or refuses with a coded error and
          // exits non-zero (the pid file cannot be written) — it must not hang or half-start.
          let fullStart = 'started';
          try {
            node = await startNode({ dir, timeoutMs: 20_000 });
          } catch (err) {
            const msg = (err as Error).message;
            assert.match(msg, 'node exited while starting', 'refused, not hung');
            assert.match(msg, 'ERR_STORAGE_FULL', 'the refusal says the disk is full');
            fullStart = 'refused ERR_STORAGE_FULL';
            rmSync(join(mount, 'ballast2'), { force: true });
          }
          restartOnFull.add(fullStart);
          const t0 = Date.now();
          if (fullStart !== 'started') node = await startNode({ dir, timeoutMs: 20_000 });
          recoveries.push(Date.now() - t0);
          const c = await AdminClient.connect(node.socket);
          try {
            const v = await verifyOver(c);
            console.log('disk: verified');
            assert.ok(v.ok, `cycle ${cycle}: verify after a crash on a full disk`);
            const store = await JournalStore.open(join(dir, 'state', 'journal'), {
              readOnly: true,
            });
            try {
              const lost = ids.filter((id) => !store.byId(id));
              assert.equal(lost.length, 0, `cycle ${cycle}: acknowledged appends lost`);
            } finally {
              await store.close();
            }
            unlinkSync(join(mount, 'ballast'));
            rmSync(join(mount, 'ballast2'), { force: true });
            const e = (await c.call('offer', {
              service: `after${cycle}`,
              port: 80,
              proto: 'tcp',
              mode: 'manual',
              leaseSeconds: 60,
            })) as { id: string };
            assert.match(e.id, /^[0-9a-f]{64}$/, 'appends resume once space is freed');
          } finally {
            c.destroy();
          }
        } catch (err) {
          failures++;
          throw err;
        } finally {
          await node?.stop().catch(() => {});
          try {
            execFileSync('umount', [mount]);
          } catch {
            execFileSync('umount', ['-l', mount]);
          }
        }
      }
    } finally {
      report({
        suite: 'disk',
        iterations: recoveries.length,
        failures,
        worstRecoveryMs: recoveries.length ? Math.max(...recoveries) : null,
        figures: {
          'acked appends': acked,
          'restart on the full disk': [...restartOnFull].join('/') || '-',
          refusals: [...codes.entries()].map(([k, v]) => `${k}:${v}`).join(' ') || '-',
        },
      });
    }
  });
}

test.run();
