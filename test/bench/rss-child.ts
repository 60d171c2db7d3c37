/**
 * Idle RSS probe, run by runtime.bench.ts in a fresh process
 * (`node --expose-gc dist/test/bench/rss-child.js MODE`), so that nothing the
 * suite did before (other supervisors, samples, JIT) is counted.
 *
 * MODE:
 *   node    a bare Node process that imports nothing;
 *   empty   a started supervisor with zero actors (the baseline);
 *   actors  a started supervisor with the node's four actors — the real
 *           modules (dist/actors/NAME/actor.js) if all four are built and
 *           start, else probe actors under the same names and topology.
 *
 * After start it settles, collects garbage, and prints one JSON line on
 * stdout: { mode, actors, rssBytes, heapUsedBytes, externalBytes }.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const SETTLE_MS = Number(process.env.MESHNODE_BENCH_RSS_SETTLE_MS ?? 1500);
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

if (mode === 'empty' || mode === 'actors') {
  const { pino } = await import('pino');
  const { Supervisor } = await import('../../supervisor/supervisor.js');
  const logger = pino({ level: 'warn' }, pino.destination({ dest: 2, sync: true }));
  const probeModule = fileURLToPath(new URL('../fixtures/actors/probe.js', import.meta.url));
  const realModule = (name: string) =>
    fileURLToPath(new URL(`../../actors/${name}/actor.js`, import.meta.url));

  const start = async (children: Array<{ name: string; module: string; options?: object }>) => {
    const sup = new Supervisor({ children, topology: children.length ? TOPOLOGY : [] }, { logger });
    await sup.start();
    return sup;
  };

  let sup;
  if (mode === 'empty') {
    sup = await start([]);
  } else {
    if (NAMES.every((n) => existsSync(realModule(n)))) {
      try {
        sup = await start(NAMES.map((name) => ({ name, module: realModule(name) })));
        used = 'real';
      } catch (err) {
        console.error(`real actors did not start (${(err as Error).message}); using probes`);
      }
    }
    if (!sup) {
      sup = await start(
        NAMES.map((name) => ({
          name,
          module: probeModule,
          options: {
            peers: TOPOLOGY.flatMap(([a, b]) => (a === name ? [b] : b === name ? [a] : [])),
          },
        })),
      );
      used = 'probe';
    }
  }
  const running = sup;
  stop = () => running.stop('rss measured');
}

await sleep(SETTLE_MS);
gc();
await sleep(100);
gc();
const mem = process.memoryUsage();
console.log(
  JSON.stringify({
    mode,
    actors: used,
    rssBytes: mem.rss,
    heapUsedBytes: mem.heapUsed,
    externalBytes: mem.external,
  }),
);
await stop();
