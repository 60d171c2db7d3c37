/**
 * Test helpers shared by every test file:
 *  - `describe(name)`: a uvu suite whose every test has a time limit
 *    (uvu has none of its own; a hung test would otherwise hang the file);
 *  - `tempDir()`: a fresh directory removed after the file's tests;
 *  - `rootOnly()`: skip-with-reason for tests that need root, except under
 *    CI=true, where missing root is a failure, never a silent skip.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';

/** Default per-test limit; tests that spawn processes pass their own. */
const DEFAULT_TIMEOUT_MS = 10_000;

type TestFn = () => unknown;

export interface Suite {
  (title: string, fn: TestFn, timeoutMs?: number): void;
  skip(title: string, fn?: TestFn): void;
  before(fn: TestFn): void;
  after(fn: TestFn): void;
  beforeEach(fn: TestFn): void;
  afterEach(fn: TestFn): void;
  run(): void;
}

export function describe(name: string, defaultTimeoutMs = DEFAULT_TIMEOUT_MS): Suite {
  const s = suite(name);
  const test = ((title: string, fn: TestFn, timeoutMs = defaultTimeoutMs) =>
    s(title, () => withTimeout(title, fn, timeoutMs))) as Suite;
  test.skip = (title) => s.skip(title, () => {});
  test.before = (fn) => s.before(() => withTimeout('before', fn, defaultTimeoutMs));
  test.after = (fn) => s.after(() => withTimeout('after', fn, defaultTimeoutMs));
  test.beforeEach = (fn) => s.before.each(() => withTimeout('beforeEach', fn, defaultTimeoutMs));
  test.afterEach = (fn) => s.after.each(() => withTimeout('afterEach', fn, defaultTimeoutMs));
  test.run = () => s.run();
  return test;
}

export async function withTimeout(title: string, fn: TestFn, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`"${title}" exceeded its ${ms} ms time limit`)), ms);
  });
  try {
    await Promise.race([Promise.resolve().then(fn), limit]);
  } finally {
    clearTimeout(timer);
  }
}

const dirs: string[] = [];
process.on('exit', () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh temp directory, removed when the test process exits. */
export function tempDir(prefix = 'meshnode-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/**
 * For tests that need root: returns a reason to skip, or null to run.
 * Under CI=true a missing root throws instead: CI must run them.
 */
export function rootOnly(): string | null {
  if (process.getuid?.() === 0) return null;
  if (process.env.CI === 'true')
    throw new Error('CI=true but not root: root-only tests must run in CI');
  return 'needs root (run as root to include it)';
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Wait until `check` is true, polling; throws after `ms`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  ms = 5000,
  what = 'condition',
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(5);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** Expect a promise to reject with a MeshError code; returns the error. */
export async function rejectsWith(
  p: Promise<unknown>,
  code: string,
): Promise<Error & { code: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as Error & { code: string };
    if (e.code !== code)
      throw new Error(`expected ${code}, got ${e.code ?? 'no code'}: ${e.message}`);
    return e;
  }
  throw new Error(`expected rejection with ${code}, but it resolved`);
}
