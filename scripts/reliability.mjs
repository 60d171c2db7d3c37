#!/usr/bin/env node
// `npm run reliability [-- --long] [-- NAME ...]`: runs the reliability suites
// (dist/test/reliability/*.test.js: crash, faults, fuzz, disk, soak, network),
// one child process per suite, one after another, each under a time limit,
// and prints a table: suite, iterations, failures, worst recovery time,
// figures. Without --long each suite runs its short CI variant (the one
// `npm test` runs too); --long sets MESHNODE_LONG=1 (50 crash iterations,
// a 10-minute soak, longer fuzzing, ...). MESHNODE_SEED=N replays a seed.
//
// A suite prints `reliability {json}` lines (test/reliability/report.ts); the
// failures column adds the suite's own count and uvu's failed tests. Exits 1
// if any suite failed, crashed or reported nothing.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { runChild, uvuSummary } from './run-child.mjs';

const root = new URL('..', import.meta.url).pathname;
const dir = join(root, 'dist', 'test', 'reliability');
const args = process.argv.slice(2);
const long = args.includes('--long');
const names = args.filter((a) => !a.startsWith('--'));
const SUITE_TIMEOUT_MS = Number(
  process.env.MESHNODE_RELIABILITY_SUITE_TIMEOUT_MS ?? (long ? 3_600_000 : 600_000),
);

if (!existsSync(dir)) {
  console.error(
    'reliability: dist/test/reliability is missing; build first (npm run reliability does)',
  );
  process.exit(2);
}
const ORDER = ['crash', 'faults', 'fuzz', 'disk', 'soak', 'network'];
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.test.js'))
  .map((f) => f.slice(0, -'.test.js'.length))
  .filter((n) => names.length === 0 || names.includes(n))
  .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
if (files.length === 0) {
  console.error(`reliability: no suite matched ${names.join(' ')}`);
  process.exit(2);
}

const rows = [];
for (const name of files) rows.push(...(await runSuite(name)));

const header = ['suite', 'iterations', 'failures', 'worst recovery', 'figures'];
const table = rows.map((r) => [
  r.suite,
  String(r.iterations),
  String(r.failures),
  r.worstRecoveryMs === null ? '-' : `${r.worstRecoveryMs} ms`,
  Object.entries(r.figures)
    .map(([k, v]) => `${k} ${v}`)
    .join(', '),
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i].length)));
const line = (cells) =>
  cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
console.log(`\n# reliability (${long ? 'long' : 'short'} run)`);
console.log(line(header));
console.log(line(widths.map((w) => '-'.repeat(w))));
for (const t of table) console.log(line(t));
const bad = rows.some((r) => r.failures > 0);
process.exit(bad ? 1 : 0);

function rank(n) {
  const i = ORDER.indexOf(n);
  return i < 0 ? ORDER.length : i;
}

async function runSuite(name) {
  console.log(`\n# ${name}`);
  const { code, out, timedOut } = await runChild(join(dir, `${name}.test.js`), {
    cwd: root,
    env: long ? { MESHNODE_LONG: '1' } : {},
    timeoutMs: SUITE_TIMEOUT_MS,
  });
  const reports = [];
  for (const l of out.split('\n')) {
    const m = /reliability (\{.*\})\s*$/.exec(l);
    if (!m) continue;
    try {
      reports.push(JSON.parse(m[1]));
    } catch {
      /* not ours */
    }
  }
  const { total, passed, skipped } = uvuSummary(out);
  let testFailures = Number.isNaN(total) ? 1 : total - passed - skipped;
  if ((code !== 0 || timedOut) && testFailures === 0) testFailures = 1;
  if (reports.length === 0) {
    const why = timedOut ? 'timed out' : skipped > 0 ? 'skipped' : `exit ${code}`;
    return [
      {
        suite: name,
        iterations: 0,
        failures: skipped > 0 && testFailures === 0 ? 0 : Math.max(1, testFailures),
        worstRecoveryMs: null,
        figures: { note: `no report (${why})` },
      },
    ];
  }
  // uvu's failed tests are charged to the suite's first row (once).
  return reports.map((r, i) => ({
    ...r,
    failures: Math.max(r.failures, i === 0 ? testFailures : 0),
    figures: { ...r.figures, ...(timedOut && i === 0 ? { note: 'timed out' } : {}) },
  }));
}
