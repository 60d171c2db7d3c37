// One compiled test file in its own process, shared by scripts/test.mjs and
// scripts/reliability.mjs: its output is echoed as it comes and kept for the
// caller to read uvu's summary from; past its time limit it is SIGKILLed.
import { spawn } from 'node:child_process';

/** Resolves with the exit code, the whole stdout, and whether it was killed for time. */
export function runChild(file, { cwd, env = {}, timeoutMs }) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--enable-source-maps', file], {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', ...env },
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      process.stdout.write(d);
    });
    child.stderr.on('data', (d) => process.stderr.write(d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, timedOut });
    });
  });
}

/** uvu's summary counts in a file's output (NaN for total and passed when absent). */
export function uvuSummary(out) {
  const num = (label) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(out)?.[1] ?? NaN);
  return { total: num('Total'), passed: num('Passed'), skipped: num('Skipped') || 0 };
}
