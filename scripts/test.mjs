#!/usr/bin/env node
// Runs every compiled uvu test file (dist/test/**/*.test.js), one process per
// file so a crash or hang in one cannot take the others down, each under a
// time limit, and ends with uvu's totals summed over files:
//   N passed, N failed[, N skipped]
// Usage: npm test [-- substring ...]   (only files whose path contains one)
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { runChild, uvuSummary } from './run-child.mjs';

// A whole file gets this long; each test inside has its own, shorter limit.
const FILE_TIMEOUT_MS = Number(process.env.MESHNODE_TEST_FILE_TIMEOUT_MS ?? 300_000);
const root = new URL('..', import.meta.url).pathname;
const testDir = join(root, 'dist', 'test');
const filters = process.argv.slice(2);

const files = walk(testDir)
  .filter((f) => f.endsWith('.test.js'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();

let passed = 0;
let failed = 0;
let skipped = 0;
for (const file of files) {
  const r = await runFile(file);
  passed += r.passed;
  failed += r.failed;
  skipped += r.skipped;
}
if (files.length === 0) {
  console.log('no test files matched');
  failed += 1;
}
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);

async function runFile(file) {
  const name = relative(testDir, file);
  console.log(`\n# ${name}`);
  const { code, out, timedOut } = await runChild(file, { cwd: root, timeoutMs: FILE_TIMEOUT_MS });
  const { total, passed: ok, skipped: skip } = uvuSummary(out);
  if (Number.isNaN(total) || Number.isNaN(ok)) {
    console.log(`! ${name}: no uvu summary (exit ${code}${timedOut ? ', timed out' : ''})`);
    return { passed: 0, failed: 1, skipped: 0 };
  }
  let bad = total - ok - skip;
  if (timedOut) console.log(`! ${name}: killed after ${FILE_TIMEOUT_MS} ms`);
  if ((code !== 0 || timedOut) && bad === 0) bad = 1;
  return { passed: ok, failed: bad, skipped: skip };
}

function walk(dir) {
  let out = [];
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out = out.concat(walk(p));
    else out.push(p);
  }
  return out;
}
