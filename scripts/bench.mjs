#!/usr/bin/env node
// Runs the compiled benchmark suites (dist/test/bench/NAME.bench.js), one
// child process per suite, one after another (they measure; running them in
// parallel would measure each other), each under a time limit.
//
// A suite prints figure lines in the format documented in
// test/bench/harness.ts (the regex is imported from the compiled harness):
//   bench SUITE.FIGURE: VALUE UNIT, baseline VALUE UNIT, ratio R, target OP T[ UNIT] ok|FAIL
// This runner passes every line through, then prints a summary. It exits
// non-zero if a figure line ends in FAIL, a line starting with `bench ` does
// not parse, or a suite crashes (an exit code other than 0 or the harness's
// EXIT_FAIL-after-a-FAIL, a signal, its time limit, or no figure at all).
//
// Usage: npm run bench [-- NAME ...]   NAME: runtime, journal, gossip, nft, sandbox, directory
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { cpus as cpuTimes } from 'node:os';
import { join, relative } from 'node:path';

const SUITES = ['runtime', 'journal', 'gossip', 'nft', 'sandbox', 'directory'];
const SUITE_TIMEOUT_MS = Number(process.env.MESHNODE_BENCH_SUITE_TIMEOUT_MS ?? 600_000);
const root = new URL('..', import.meta.url).pathname;
const benchDir = join(root, 'dist', 'test', 'bench');
const harness = join(benchDir, 'harness.js');

if (!existsSync(harness)) {
  console.error(`bench: ${relative(root, harness)} is missing; build first (npm run bench does)`);
  process.exit(2);
}
const { FIGURE_LINE, EXIT_FAIL } = await import(harness);

const built = existsSync(benchDir)
  ? readdirSync(benchDir)
      .filter((f) => f.endsWith('.bench.js'))
      .map((f) => f.slice(0, -'.bench.js'.length))
      .sort((a, b) => order(a) - order(b) || a.localeCompare(b))
  : [];

const asked = process.argv.slice(2);
for (const name of asked) {
  if (built.includes(name)) continue;
  if (SUITES.includes(name)) {
    console.error(`bench: suite "${name}" does not exist yet (no test/bench/${name}.bench.ts)`);
  } else {
    console.error(`bench: unknown suite "${name}" (known: ${SUITES.join(', ')})`);
  }
  process.exit(2);
}
const names = asked.length > 0 ? asked : built;
if (names.length === 0) {
  console.error(`bench: no suites found in ${relative(root, benchDir)}`);
  process.exit(2);
}

const results = [];
for (const name of names) results.push(await runSuite(name));

let bad = false;
console.log('\n# summary');
for (const r of results) {
  const crashed = r.crash !== null;
  if (crashed || r.fail > 0 || r.malformed > 0) bad = true;
  console.log(
    `${r.name}: ${r.ok} ok, ${r.fail} FAIL` +
      (r.malformed ? `, ${r.malformed} unparseable` : '') +
      (crashed ? `, crashed (${r.crash})` : '') +
      `, ${(r.ms / 1000).toFixed(1)} s` +
      `, other load ${r.busy.map((b) => `${b.toFixed(0)}%`).join('/')} before/after`,
  );
}
process.exit(bad ? 1 : 0);

/** Share of CPU time, over all CPUs, that was not idle during the next `ms`. */
async function busyPercent(ms) {
  const sum = () =>
    cpuTimes().reduce(
      (acc, c) => {
        const t = c.times;
        acc.total += t.user + t.nice + t.sys + t.idle + t.irq;
        acc.idle += t.idle;
        return acc;
      },
      { total: 0, idle: 0 },
    );
  const a = sum();
  await new Promise((r) => setTimeout(r, ms));
  const b = sum();
  const total = b.total - a.total;
  return total > 0 ? (100 * (total - (b.idle - a.idle))) / total : 0;
}

function order(name) {
  const i = SUITES.indexOf(name);
  return i < 0 ? SUITES.length : i;
}

async function runSuite(name) {
  const file = join(benchDir, `${name}.bench.js`);
  console.log(`\n# ${name}`);
  // Figures are only as good as the machine is quiet: say how busy it was.
  const busy = await busyPercent(1000);
  console.log(
    `# other load: CPUs ${busy.toFixed(0)}% busy just before the suite` +
      (busy > 10 ? ' (busy machine: figures may be off)' : ''),
  );
  const started = Date.now();
  const r = await new Promise((resolve) => {
    // No --enable-source-maps: worker threads inherit the flag, and it adds
    // ~5 ms to every worker start (measured), so the restart figure would
    // not be the daemon's (which runs without it).
    const child = spawn(process.execPath, ['--expose-gc', file], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    const r = { name, ok: 0, fail: 0, malformed: 0, crash: null, ms: 0, busy: [busy, 0] };
    let buf = '';
    const onLine = (line) => {
      console.log(line);
      if (!line.startsWith('bench ')) return;
      const m = FIGURE_LINE.exec(line);
      if (!m) {
        r.malformed++;
        console.log(`! bench: unparseable figure line above`);
      } else if (m[1] !== name) {
        r.malformed++;
        console.log(`! bench: figure line above names suite ${m[1]}, expected ${name}`);
      } else if (m[11] === 'ok') r.ok++;
      else r.fail++;
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, SUITE_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (buf) onLine(buf);
      r.ms = Date.now() - started;
      if (timedOut) r.crash = `killed after ${SUITE_TIMEOUT_MS} ms`;
      else if (signal) r.crash = `signal ${signal}`;
      else if (code !== 0 && !(code === EXIT_FAIL && r.fail > 0)) r.crash = `exit ${code}`;
      else if (r.ok + r.fail === 0) r.crash = 'no figure lines';
      resolve(r);
    });
  });
  r.busy[1] = await busyPercent(1000);
  console.log(`# other load: CPUs ${r.busy[1].toFixed(0)}% busy just after the suite`);
  return r;
}
