/**
 * Shared helpers for the benchmark suites (test/bench/*.bench.ts), run by
 * scripts/bench.mjs (`npm run bench [-- SUITE]`), one child process per suite.
 *
 * Output contract
 * ---------------
 * A suite prints one FIGURE LINE per figure on stdout, exactly:
 *
 *   bench SUITE.FIGURE: VALUE UNIT, baseline VALUE UNIT, ratio R, target OP T[ TUNIT] ok|FAIL
 *
 *   SUITE, FIGURE  [a-z][a-z0-9_]*  (e.g. `runtime.ask_p50`)
 *   VALUE          a plain decimal number (no exponent, no thousands separator)
 *   UNIT           one token without spaces or commas (`µs`, `ms`, `msg/s`, `MB`)
 *   baseline       the closest meaningful baseline, always measured in the same
 *                  run (never a remembered constant), with its own unit
 *   R              VALUE / baseline, plain decimal
 *   OP             `<=` or `>=`
 *   target         `target OP T` (no unit): the target applies to the ratio R;
 *                  `target OP T TUNIT` (with a unit, equal to UNIT): the target
 *                  applies to VALUE itself (absolute targets: latency budgets,
 *                  RSS); the ratio is then information about the baseline.
 *   ok | FAIL      the last word: whether the target is met.
 *
 * Examples:
 *   bench runtime.ask_p50: 41.2 µs, baseline 30.1 µs, ratio 1.37, target <= 1.5 ok
 *   bench runtime.restart_p50: 31.4 ms, baseline 9.8 ms, ratio 3.20, target <= 40 ms ok
 *
 * `FIGURE_LINE` below parses a figure line; scripts/bench.mjs imports it from
 * the compiled harness, so there is one definition of the format.
 *
 * Any other stdout line is information for humans and must not start with
 * `bench `; suites use `info SUITE.NAME: free text` (see `Reporter.info`).
 * A suite (through `runSuite`) exits 0 when every figure is ok, 3 when a
 * figure is FAIL, 2 when its body threw (any other non-zero code is a crash
 * too); it must exit on its own (stop supervisors, terminate workers).
 */

/** Parses a figure line; groups: suite, figure, value, unit, baseline, baselineUnit, ratio, op, target, targetUnit?, verdict. */
export const FIGURE_LINE =
  /^bench ([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*): (-?\d+(?:\.\d+)?) ([^\s,]+), baseline (-?\d+(?:\.\d+)?) ([^\s,]+), ratio (-?\d+(?:\.\d+)?), target (<=|>=) (-?\d+(?:\.\d+)?)(?: ([^\s,]+))? (ok|FAIL)$/;

export type Op = '<=' | '>=';

export interface Figure {
  /** Figure id within the suite: [a-z][a-z0-9_]*. */
  name: string;
  value: number;
  unit: string;
  baseline: number;
  /** Defaults to `unit`. */
  baselineUnit?: string;
  op: Op;
  target: number;
  /** What the target applies to: the ratio value/baseline, or the value itself (printed with its unit). */
  on: 'ratio' | 'value';
}

export interface Reporter {
  /** Print one figure line; returns whether it met its target. */
  figure(f: Figure): boolean;
  /** Print an information line (`info SUITE.NAME: text`). */
  info(name: string, text: string): void;
  /** Figures that missed their target so far. */
  readonly failures: number;
}

const ID = /^[a-z][a-z0-9_]*$/;

export function createReporter(suite: string): Reporter {
  if (!ID.test(suite)) throw new TypeError(`bad suite name ${suite}`);
  let failures = 0;
  return {
    figure(f) {
      if (!ID.test(f.name)) throw new TypeError(`bad figure name ${f.name}`);
      const ratio = f.baseline === 0 ? Infinity : f.value / f.baseline;
      const subject = f.on === 'ratio' ? ratio : f.value;
      const ok =
        Number.isFinite(subject) && (f.op === '<=' ? subject <= f.target : subject >= f.target);
      if (!ok) failures++;
      const target = `${f.op} ${plain(f.target)}${f.on === 'value' ? ` ${f.unit}` : ''}`;
      const line =
        `bench ${suite}.${f.name}: ${num(f.value)} ${f.unit}, ` +
        `baseline ${num(f.baseline)} ${f.baselineUnit ?? f.unit}, ` +
        `ratio ${Number.isFinite(ratio) ? ratio.toFixed(2) : '0'}, target ${target} ${ok ? 'ok' : 'FAIL'}`;
      if (!FIGURE_LINE.test(line))
        throw new Error(`harness produced an unparseable figure line: ${line}`);
      console.log(line);
      return ok;
    },
    info(name, text) {
      console.log(`info ${suite}.${name}: ${text}`);
    },
    get failures() {
      return failures;
    },
  };
}

/** Exit codes of a suite run through `runSuite`. */
export const EXIT_CRASH = 2;
export const EXIT_FAIL = 3;

/**
 * Run a suite's body: exit code EXIT_CRASH if it throws, EXIT_FAIL if a
 * figure FAILs. Never calls process.exit: a suite that leaves a handle open
 * hangs, and the runner's time limit reports it, so leaks are seen rather
 * than hidden.
 */
export async function runSuite(suite: string, body: (r: Reporter) => Promise<void>): Promise<void> {
  const reporter = createReporter(suite);
  const started = performance.now();
  try {
    await body(reporter);
  } catch (err) {
    console.error(`bench ${suite} crashed:`, err);
    process.exitCode = EXIT_CRASH;
    return;
  }
  reporter.info('elapsed', `${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (reporter.failures > 0) process.exitCode = EXIT_FAIL;
}

/** A target as written (1.5, 0.7, 40): shortest plain decimal. */
function plain(v: number): string {
  const s = String(v);
  return /e/i.test(s) ? v.toFixed(6).replace(/\.?0+$/, '') : s;
}

/** A plain decimal with a sensible number of digits (never exponent notation). */
export function num(v: number): string {
  if (!Number.isFinite(v)) return '0';
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 100) return v.toFixed(1);
  if (a >= 10) return v.toFixed(2);
  return v.toFixed(3);
}

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank quantile of an ascending array. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
}

export function summarize(samples: ArrayLike<number>): Summary {
  const s = Float64Array.from(samples).sort();
  let sum = 0;
  for (const v of s) sum += v;
  return {
    n: s.length,
    min: s[0] ?? NaN,
    p50: quantile(s, 0.5),
    p90: quantile(s, 0.9),
    p99: quantile(s, 0.99),
    max: s[s.length - 1] ?? NaN,
    mean: sum / s.length,
  };
}

/** `p50 X, p99 Y, …` for info lines. */
export function describe(s: Summary, unit: string): string {
  return (
    `n ${s.n}, min ${num(s.min)}, p50 ${num(s.p50)}, p90 ${num(s.p90)}, ` +
    `p99 ${num(s.p99)}, max ${num(s.max)}, mean ${num(s.mean)} ${unit}`
  );
}

/** The median of a few repeated measurements (rounds of a throughput run). */
export function median(values: readonly number[]): number {
  return quantile(Float64Array.from(values).sort(), 0.5);
}

/** Collect garbage if the process runs with --expose-gc (scripts/bench.mjs passes it). */
export function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
