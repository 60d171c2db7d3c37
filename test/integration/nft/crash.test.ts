/**
 * The executor dies in the middle of a batch (root only, real nftables in a
 * network namespace): the kernel must hold either the old state or the new
 * one, never a mix. Each round swaps a set of 3,000 granted addresses for
 * another 3,000 (removals, adds and refreshes in one transaction) and
 * kills the executor a few milliseconds in — the whole driver process with
 * SIGKILL, or only the executor's worker thread (the supervisor restarts
 * it) — at delays that land before, during and after nft runs.
 */
import { readFileSync } from 'node:fs';
import * as assert from 'uvu/assert';
import type { ApplyResult } from '../../../runtime/protocol/nft.js';
import { NftLab } from '../../helpers/nft.js';
import type { Driver } from '../../helpers/nft.js';
import { describe, rootOnly, sleep, until } from '../../helpers/test.js';

const test = describe('nft/crash', 60_000);
const skipReason = rootOnly();

const PORT = 9000;
const SET = `tcp_${PORT}_v4`;
const N = 3000;
/**
 * When to kill, as fractions of the time one swap takes here (measured
 * first): before the batch is written, while nft runs, just after.
 */
const FRACTIONS = [0.05, 0.2, 0.4, 0.55, 0.7, 0.8, 0.9, 1.0, 1.2];
const OPTIONS = {
  backend: 'nft',
  meshCidrs: ['10.0.0.0/8'],
  checkMs: 60_000,
  reconcileMs: 600_000,
};

/** Generation g's addresses: 10.g.x.y. The shared block 10.200.* is refreshed by every swap. */
const gen = (g: number) => Array.from({ length: N }, (_, i) => `10.${g}.${i >> 8}.${i & 255}`);
const SHARED = Array.from({ length: 50 }, (_, i) => `10.200.0.${i + 1}`);
const add = (ip: string) => ({ proto: 'tcp', port: PORT, ip, leaseSeconds: 600 });
const ref = (ip: string) => ({ proto: 'tcp', port: PORT, ip });
const sorted = (ips: string[]) => [...ips].sort();

let lab: NftLab;

/** The command names of the namespace's processes other than `keep` (the driver). */
function others(keep: Driver | null): string[] {
  return lab
    .pids(lab.srv)
    .filter((p) => p !== keep?.proc.pid)
    .map((p) => {
      try {
        return readFileSync(`/proc/${p}/comm`, 'utf8').trim();
      } catch {
        return 'gone';
      }
    })
    .filter((c) => c !== 'gone');
}

/**
 * Wait until a killed executor's nft has finished and its launcher shell has
 * exited (it reads EOF once the worker's pipe closes): what may remain is at
 * most one shell, the restarted executor's launcher (actors/nft/launcher.ts).
 */
async function quiet(keep: Driver | null): Promise<void> {
  await until(
    () => {
      const left = others(keep);
      return !left.includes('nft') && left.filter((c) => c === 'sh').length <= 1;
    },
    10_000,
    'nft to finish and the old launcher to exit',
  );
}

/** Kill delays: FRACTIONS of one measured swap (the same one twice: back to `current`). */
async function swapTimes(driver: Driver, current: string[]): Promise<number[]> {
  const other = [...gen(250), ...SHARED];
  const swap = async (from: string[], to: string[]) => {
    const t0 = performance.now();
    await driver.ask('grants', 'apply', {
      remove: from.filter((ip) => !SHARED.includes(ip)).map(ref),
      add: to.map(add),
    });
    return performance.now() - t0;
  };
  const ms = (await swap(current, other)) + (await swap(other, current));
  const one = ms / 2;
  console.log(`# one swap of ${2 * N} elements takes ${one.toFixed(0)} ms here`);
  return FRACTIONS.map((f) => Math.round(f * one));
}

/** The set now, which must be exactly `old` or `next`; returns which. */
function oldOrNew(old: string[], next: string[]): 'old' | 'new' {
  const now = lab.elements(SET);
  if (JSON.stringify(now) === JSON.stringify(sorted(old))) return 'old';
  if (JSON.stringify(now) === JSON.stringify(sorted(next))) return 'new';
  assert.unreachable(
    `a mixed state: ${now.length} elements, neither the old ${old.length} nor the new ${next.length}`,
  );
  return 'old';
}

if (skipReason) {
  console.log(`# skipping the nft crash tests: ${skipReason}`);
  test.skip(`nft executor killed mid-batch (${skipReason})`);
} else {
  test.before(() => {
    lab = NftLab.create();
  });
  test.after(() => lab?.destroy());

  test('the driver process SIGKILLed mid-batch: the kernel holds the old state or the new', async () => {
    let driver = await lab.driver(OPTIONS);
    let current = [...gen(1), ...SHARED];
    await driver.ask('grants', 'apply', { add: current.map(add) });
    const delays = await swapTimes(driver, current);
    const outcomes: string[] = [];
    for (const [i, delay] of delays.entries()) {
      const next = [...gen(i + 2), ...SHARED];
      driver.fire('grants', 'apply', {
        remove: current.filter((ip) => !SHARED.includes(ip)).map(ref),
        add: next.map(add),
      });
      await sleep(delay);
      await driver.kill();
      await quiet(null);
      const which = oldOrNew(current, next);
      outcomes.push(`${delay} ms: ${which}`);
      if (which === 'new') current = next;
      driver = await lab.driver(OPTIONS);
    }
    console.log(`# ${outcomes.join(', ')}`);
    // The restarted executor picks up from the kernel: a refresh of what is there works.
    const r = (await driver.ask('grants', 'apply', { add: SHARED.map(add) })) as ApplyResult;
    assert.is(r.refreshed.length, SHARED.length);
    assert.is(r.added, 0);
    await driver.stop();
  });

  test('the executor worker killed mid-batch: old or new state, and the restarted executor carries on', async () => {
    const driver = await lab.driver(OPTIONS);
    let current = lab.elements(SET);
    const delays = await swapTimes(driver, current);
    const outcomes: string[] = [];
    for (const [i, delay] of delays.entries()) {
      const next = [...gen(100 + i), ...SHARED];
      const pending = driver
        .ask('grants', 'apply', {
          remove: current.filter((ip) => !SHARED.includes(ip)).map(ref),
          add: next.map(add),
        })
        .then(
          () => 'answered',
          (err: { code?: string }) => err.code ?? 'failed',
        );
      await sleep(delay);
      await driver.cmd('kill');
      const answer = await pending;
      await quiet(driver);
      const which = oldOrNew(current, next);
      outcomes.push(`${delay} ms: ${which} (${answer})`);
      if (answer === 'answered') assert.is(which, 'new', 'an answered apply is in the kernel');
      if (which === 'new') current = next;
      await until(
        async () =>
          ((await driver.cmd('info')) as Array<{ name: string; state: string }>).every(
            (c) => c.state === 'running',
          ),
        30_000,
        'the executor restarted',
      );
    }
    console.log(`# ${outcomes.join(', ')}`);
    const r = (await driver.ask('grants', 'apply', { remove: current.map(ref) })) as ApplyResult;
    assert.is(r.removed, current.length);
    assert.equal(lab.elements(SET), []);
    await driver.stop();
  });

  test('the namespaces are removed', () => {
    lab.destroy();
    assert.equal(lab.remaining(), []);
  });
}

test.run();
