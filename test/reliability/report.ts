/**
 * Shared by the reliability suites (test/reliability/*.test.ts):
 *  - `LONG`: MESHNODE_LONG=1 selects the long variant (`npm run reliability -- --long`);
 *    without it each suite runs its short CI variant under `npm test`;
 *  - `report()`: one machine-readable line per suite, `reliability {json}`,
 *    that scripts/reliability.mjs collects into its table;
 *  - `rng()`: a seeded PRNG (mulberry32) so a failing run reproduces:
 *    every suite prints its seed, and MESHNODE_SEED=N replays it.
 */

export const LONG = process.env.MESHNODE_LONG === '1';

export interface SuiteReport {
  suite: string;
  iterations: number;
  failures: number;
  /** Worst time from a fault to the node (or actor) answering again, ms; null if not measured. */
  worstRecoveryMs: number | null;
  /** Free-form figures, `name: value` pairs, printed in the table's last column. */
  figures: Record<string, string | number>;
}

export function report(r: SuiteReport): void {
  console.log(`reliability ${JSON.stringify({ ...r, long: LONG })}`);
}

/** The seed of this run: MESHNODE_SEED if set, else a fresh one (printed by the caller). */
export function seedOf(): number {
  const s = Number(process.env.MESHNODE_SEED);
  return Number.isInteger(s) && s > 0 ? s >>> 0 : Math.floor(Math.random() * 2 ** 32) >>> 0 || 1;
}

export interface Rng {
  /** [0, 1) */
  (): number;
  int(n: number): number;
  pick<T>(xs: readonly T[]): T;
}

/** mulberry32: small, fast and good enough to choose mutations and kill times. */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (() => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }) as Rng;
  next.int = (n) => Math.floor(next() * n);
  next.pick = (xs) => xs[next.int(xs.length)]!;
  return next;
}
