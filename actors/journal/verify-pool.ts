/**
 * The journal's signature-verify pool (piscina, verify-task.ts): checks of
 * large ingested batches and the signature audit run there, so the writer's
 * thread only chains and commits. piscina is imported on first use: most
 * journals never need it.
 */
import { availableParallelism } from 'node:os';
import type { Piscina } from 'piscina';
import { poolDefaults } from '../../runtime/pool.js';

export class VerifyPool {
  private pool: Promise<Piscina> | null = null;

  /** The pool, started on first use. */
  get(): Promise<Piscina> {
    this.pool ??= import('piscina').then(
      ({ Piscina }) =>
        new Piscina({
          ...poolDefaults,
          filename: new URL('./verify-task.js', import.meta.url).href,
          // No thread kept once idle: a pool thread is an isolate (~10 MB of RSS), and a
          // node that caught up once (or audited) should not carry it for good.
          minThreads: 0,
          maxThreads: availableParallelism(),
          // Batches commit in arrival order, so their checks must finish in
          // that order too. Without this, piscina puts a task it could not
          // hand out yet at the back of its queue: under a few batches in
          // flight the chunks of one batch finished last, every later batch
          // waited on it, and their commits ran at the end with the pool idle.
          stricterFIFO: true,
          idleTimeout: 30_000,
        }),
    );
    return this.pool;
  }

  /** `n` items cut into one chunk per pool thread, `run` on each at once; answers in chunk order. */
  async perThread<R>(
    n: number,
    run: (pool: Piscina, from: number, to: number) => Promise<R>,
  ): Promise<R[]> {
    const pool = await this.get();
    const size = Math.ceil(n / pool.maxThreads);
    const tasks: Promise<R>[] = [];
    for (let from = 0; from < n; from += size)
      tasks.push(run(pool, from, Math.min(n, from + size)));
    return Promise.all(tasks);
  }

  async destroy(): Promise<void> {
    await (await this.pool)?.destroy();
  }
}
