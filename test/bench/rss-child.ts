/**
 * Idle RSS probe, run by runtime.bench.ts in a fresh process
 * (`node --expose-gc dist/test/bench/rss-child.js MODE`), so that nothing the
 * suite did before (other supervisors, samples, JIT) is counted.
 *
 * MODE:
 *   node       a bare Node process that imports nothing;
 *   empty      a started supervisor with zero actors (the baseline);
 *   actors     the node's four actors as the daemon starts them
 *              (supervisorInput of a default config, state in a fresh temp
 *              directory); if that cannot start, probe actors under the same
 *              names and topology (the reason goes to stderr);
 *   restarted  as `actors`, after one actor (nft) was killed and restarted:
 *              includes the warm spare worker the supervisor then keeps.
 *
 * After start it settles (SETTLE_MS), collects garbage, and prints one JSON
 * line on stdout: { mode, actors, startupRssBytes (at STARTUP_MS), rssBytes,
 * heapUsedBytes, externalBytes, threads }.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Just started: module loading and init are over (reported as the startup RSS). */
const STARTUP_MS = 1500;
/**
 * Idle: V8's memory reducer has run. It starts ~8 s after the allocation rate
 * drops and then collects a few times, shrinking each isolate's young
 * generation (grown during module loading: ~7 MB each at 1.5 s, ~0.5 MB
 * after) — measured here, every thread's heap settled by 12 s.
 */
const SETTLE_MS = Number(process.env.MESHNODE_BENCH_RSS_SETTLE_MS ?? 15_000);
const NAMES = ['journal', 'gossip', 'grants', 'nft'] as const;
/** DESIGN.md §2: who holds a channel to whom. */
const TOPOLOGY: Array<[string, string]> = [
  ['gossip', 'journal'],
  ['journal', 'grants'],
  ['gossip', 'grants'],
  ['grants', 'nft'],
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const gc = () => (globalThis as { gc?: () => void }).gc?.();

const mode = process.argv[2] ?? 'actors';
let used = 'none';
let stop: () => Promise<unknown> = async () => {};
let stateDir: string | null = null;

if (mode !== 'node') {
  const { pino } = await import('pino');
  const { Supervisor } = await import('../../supervisor/supervisor.js');
  const logger = pino({ level: 'warn' }, pino.destination({ dest: 2, sync: true }));
  type Sup = InstanceType<typeof Supervisor>;

  const startWith = async (input: Record<string, unknown>): Promise<Sup> => {
    const sup = new Supervisor(input, { logger });
    await sup.start();
    return sup;
  };

  const real = async (): Promise<Sup> => {
    const { parseConfig } = await import('../../supervisor/config.js');
    const { supervisorInput } = await import('../../supervisor/config-specs.js');
    stateDir = mkdtempSync(join(tmpdir(), 'meshnode-bench-rss-'));
    const input = supervisorInput(
      parseConfig({
        node: { state_dir: stateDir, log_level: 'warn' },
        gossip: { listen: '' },
        nft: { backend: 'memory' },
      }),
    );
    return startWith(input as Record<string, unknown>);
  };

  const probes = (): Promise<Sup> => {
    const module = fileURLToPath(new URL('../fixtures/actors/probe.js', import.meta.url));
    const peersOf = (n: string) =>
      TOPOLOGY.flatMap(([a, b]) => (a === n ? [b] : b === n ? [a] : []));
    const children = NAMES.map((name) => ({ name, module, options: { peers: peersOf(name) } }));
    return startWith({ children, topology: TOPOLOGY });
  };

  let sup: Sup | undefined;
  if (mode === 'empty') {
    sup = await startWith({ children: [] });
  } else {
    try {
      sup = await real();
      used = 'real';
    } catch (err) {
      console.error(`real actors did not start (${(err as Error).message}); using probes`);
      sup = await probes();
      used = 'probe';
    }
    if (mode === 'restarted') {
      const restarted = new Promise((resolve) => sup!.once('child:restarted', resolve));
      await sup.kill('nft', 'bench: restart for the spare');
      await restarted;
    }
  }
  const running = sup;
  stop = () => running.stop('rss measured');
}

await sleep(STARTUP_MS);
gc();
const startupRss = process.memoryUsage().rss;
await sleep(Math.max(0, SETTLE_MS - STARTUP_MS));
gc();
await sleep(100);
gc();
const mem = process.memoryUsage();
console.log(
  JSON.stringify({
    mode,
    actors: used,
    startupRssBytes: startupRss,
    rssBytes: mem.rss,
    heapUsedBytes: mem.heapUsed,
    externalBytes: mem.external,
    threads: threads(),
  }),
);
await stop();
if (stateDir) rmSync(stateDir, { recursive: true, force: true });

/** Threads of this process (Linux), or -1 where /proc is not there. */
function threads(): number {
  try {
    return readdirSync('/proc/self/task').length;
  } catch {
    return -1;
  }
}
