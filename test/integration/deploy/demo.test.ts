/**
 * `npm run demo` as an operator runs it: three real nodes on loopback, B
 * granted and C refused (asserted from what it prints and its exit code),
 * and nothing left behind — neither after `--once`, nor when it is piped
 * through a reader that dies with the Ctrl-C (`npm run demo | tee log`).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { ROOT } from '../../helpers/meshnode.js';
import { describe, until } from '../../helpers/test.js';

const test = describe('deploy/demo', 150_000);
const DEMO = join(ROOT, 'scripts', 'demo.mjs');

interface Run {
  out: () => string;
  exited: Promise<number | null>;
  proc: ReturnType<typeof spawn>;
}

function demo(args: string[]): Run {
  const proc = spawn(process.execPath, [DEMO, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { out: () => out, exited, proc };
}

/** The demo's temp dir, from its first line. */
const dirOf = (out: string) => /state under (\S+)/.exec(out)?.[1];

/** Node processes still running from `dir` (their config is under it). */
function nodesOf(dir: string): string[] {
  try {
    return execFileSync('pgrep', ['-f', `${dir}/`], { encoding: 'utf8' })
      .trim()
      .split('\n');
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

test('--once: B is granted, C is refused, exit 0, the nodes stopped and the temp dir gone', async () => {
  const run = demo(['--once']);
  const code = await run.exited;
  const out = run.out();
  assert.is(code, 0, out);
  assert.match(out, /granted: 127\.0\.0\.1:8080\/tcp until /);
  assert.match(out, /refused: ERR_GRANT_NOT_APPROVED/);
  assert.match(out, /live grant: \S+ -> web from 127\.0\.0\.1/);
  assert.match(out, /demo ok: B was granted, C was refused/);
  const dir = dirOf(out)!;
  assert.ok(dir, 'the temp dir is named');
  assert.not.ok(existsSync(dir), `${dir} removed`);
  assert.equal(nodesOf(dir), [], 'no node left running');
});

test('its output pipe dies and a Ctrl-C follows (| tee, then ^C): it still stops the nodes and removes the dir', async () => {
  const run = demo([]);
  await until(() => run.out().includes('Ctrl-C stops all three nodes.'), 120_000, 'the demo ready');
  const dir = dirOf(run.out())!;
  assert.is(nodesOf(dir).length >= 3, true, 'three nodes running');
  // The reader goes first (tee dies with the Ctrl-C), then the signal arrives.
  run.proc.stdout!.destroy();
  run.proc.stderr!.destroy();
  run.proc.kill('SIGINT');
  const code = await run.exited;
  assert.is(code, 0);
  assert.not.ok(existsSync(dir), `${dir} removed`);
  await until(() => nodesOf(dir).length === 0, 20_000, 'the nodes gone');
});

test.run();
