/**
 * The whole node as an operator runs it: `npm start` spawned in its own
 * process group, stopped by a signal to the group (what Ctrl-C does).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';
import { PROBE } from '../../helpers/supervisor.js';
import { jsonLines } from '../../helpers/process.js';
import { describe, tempDir, until } from '../../helpers/test.js';

const test = describe('daemon/signals', 60_000);
const ROOT = fileURLToPath(new URL('../../../..', import.meta.url));

interface Node {
  proc: ChildProcess;
  lines: Array<Record<string, unknown>>;
  exited: Promise<void>;
}

function startNode(configToml: string): Node {
  const dir = tempDir();
  const config = join(dir, 'meshnode.toml');
  writeFileSync(config, configToml.replaceAll('STATE_DIR', join(dir, 'state')));
  const proc = spawn('npm', ['start', '--', '--config', config], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { lines } = jsonLines(proc);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return { proc, lines, exited };
}

const has = (node: Node, msg: string) => node.lines.some((l) => l.msg === msg);
const nodePid = (node: Node) =>
  node.lines.find((l) => l.msg === 'meshnode starting')!.pid as number;
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const BASE = `
[node]
state_dir = "STATE_DIR"
[metrics]
listen = ""
`;

test('SIGINT to the process group stops every actor in reverse start order and exits 0', async () => {
  const node = startNode(BASE);
  await until(() => has(node, 'meshnode ready'), 30_000, 'node ready');
  const pid = nodePid(node);
  process.kill(-node.proc.pid!, 'SIGINT');
  await node.exited;
  await until(() => !alive(pid), 5000, 'node process gone');
  const stopped = node.lines.filter((l) => l.msg === 'actor stopped').map((l) => l.actor);
  assert.equal(stopped, ['gossip', 'grants', 'nft', 'journal']);
  const end = node.lines.find((l) => l.msg === 'meshnode stopped');
  assert.ok(end, 'the node logged its own stop');
  assert.is(end!.code, 0);
  assert.not.ok(has(node, 'second signal; forcing exit'), 'one Ctrl-C is one request, not two');
});

test('SIGTERM stops gracefully too', async () => {
  const node = startNode(BASE);
  await until(() => has(node, 'meshnode ready'), 30_000, 'node ready');
  const pid = nodePid(node);
  process.kill(pid, 'SIGTERM');
  await until(() => !alive(pid), 10_000, 'node process gone');
  assert.is(node.lines.find((l) => l.msg === 'meshnode stopped')?.code, 0);
  // The rest of the process group, if any is left (on a busy machine it is
  // often gone already: ESRCH is that, not a failure).
  try {
    process.kill(-node.proc.pid!, 'SIGTERM');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
  await node.exited;
});

test('a second signal during a slow graceful stop forces exit at once', async () => {
  // An extra actor whose stop hook takes 20 s (its shutdown timeout is 30 s),
  // so the graceful stop is still running when the second signal comes.
  const node = startNode(
    BASE +
      `
[[actors.extra]]
name = "slowpoke"
module = "${PROBE}"
shutdown_ms = 30000
options = { stopDelayMs = 20000 }
`,
  );
  await until(() => has(node, 'meshnode ready'), 30_000, 'node ready');
  const pid = nodePid(node);
  process.kill(pid, 'SIGINT');
  await until(() => has(node, 'stopping'), 5000, 'graceful stop begun');
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(alive(pid), 'still in its graceful stop');
  const t0 = Date.now();
  process.kill(pid, 'SIGINT');
  await until(() => !alive(pid), 3000, 'forced exit');
  assert.ok(Date.now() - t0 < 3000, 'forced exit is immediate');
  assert.ok(has(node, 'second signal; forcing exit'));
  assert.not.ok(has(node, 'meshnode stopped'), 'the graceful path never finished');
  process.kill(-node.proc.pid!, 'SIGKILL');
  await node.exited;
});

test('restart intensity exceeded: every actor stopped in reverse order, the process exits 1', async () => {
  // An extra actor that crashes 100 ms after every start; 2 restarts allowed.
  const node = startNode(
    BASE.replace('[metrics]', '[supervisor]\nmax_restarts = 2\nperiod_seconds = 60\n[metrics]') +
      `
[[actors.extra]]
name = "crasher"
module = "${PROBE}"
options = { crashAfterMs = 100 }
`,
  );
  await node.exited;
  const exits = node.lines.filter((l) => l.msg === 'actor exited' && l.actor === 'crasher');
  assert.is(exits.length, 3, 'two crashes restarted, the third escalates');
  const stopped = node.lines.filter((l) => l.msg === 'actor stopped').map((l) => l.actor);
  assert.equal(stopped, ['gossip', 'grants', 'nft', 'journal']);
  assert.is(node.lines.find((l) => l.msg === 'meshnode stopped')?.code, 1);
  assert.is(node.proc.exitCode, 1);
});

test('an invalid config file is refused with the field named on stderr, exit 2', async () => {
  const node = startNode(BASE + '\n[supervisor]\nmax_restarts = -1\n');
  let stderr = '';
  node.proc.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  await node.exited;
  assert.match(stderr, /meshnode: ERR_INVALID_CONFIG: config\.supervisor\.max_restarts /);
  assert.not.ok(
    node.lines.some((l) => l.msg === 'meshnode starting'),
    'nothing started',
  );
  assert.is(node.proc.exitCode, 2);
});

test.run();
