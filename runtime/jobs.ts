/**
 * Long operator work (`journal verify` of a million entries takes minutes)
 * as jobs: started by one ask that answers at once, followed by asks that
 * answer its progress, cancelled by another. No single ask waits for the
 * work, so no ask timeout bounds how long it may take; the CLI shows the
 * progress and turns Ctrl-C into a cancel.
 */
import { randomUUID } from 'node:crypto';
import { E } from './errors.js';
import type { JobState } from './protocol/jobs.js';

export type { JobState };

/**
 * A job nobody asked about for this long is cancelled: its CLI was killed
 * (kill -9, a lost SSH session) and no one will read the answer, so the
 * cores it holds are better given back. A follower asks every ~0.5 s.
 */
export const JOB_ORPHAN_MS = 30_000;
/** Finished jobs kept for a late follower; the oldest go first. */
const KEEP_FINISHED = 8;

/** What the work reports as it goes. */
export type Progress = (done: number, total: number) => void;

/** The work of a job: it must stop soon after `signal` aborts. */
export type JobWork = (signal: AbortSignal, progress: Progress) => Promise<unknown>;

interface Job {
  state: JobState;
  abort: AbortController;
  lastAsked: number;
  orphanTimer: NodeJS.Timeout;
}

export class Jobs {
  private readonly jobs = new Map<string, Job>();

  constructor(
    private readonly orphanMs = JOB_ORPHAN_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Start `work` as a job of `kind`; a job of that kind already running is
   * answered instead (two verifies at once would only halve each other).
   */
  start(kind: string, work: JobWork): JobState {
    for (const j of this.jobs.values()) {
      if (j.state.kind === kind && j.state.state === 'running') return this.touch(j);
    }
    const id = randomUUID();
    const abort = new AbortController();
    const startedAt = this.now();
    const job: Job = {
      state: { id, kind, state: 'running', done: 0, total: 0, startedAt, elapsedMs: 0 },
      abort,
      lastAsked: startedAt,
      orphanTimer: setInterval(() => this.jobOnOrphanCheck(job), this.orphanMs / 3),
    };
    job.orphanTimer.unref();
    this.jobs.set(id, job);
    const progress: Progress = (done, total) => {
      job.state.done = done;
      job.state.total = total;
    };
    work(abort.signal, progress).then(
      (result) => this.finish(job, abort.signal.aborted ? 'cancelled' : 'done', { result }),
      (err: unknown) => {
        const e = err as { code?: unknown; message?: unknown };
        const code = typeof e.code === 'string' ? e.code : 'ERR_INTERNAL';
        const message = typeof e.message === 'string' ? e.message : String(err);
        this.finish(job, abort.signal.aborted ? 'cancelled' : 'failed', {
          error: { code, message },
        });
      },
    );
    this.prune();
    return { ...job.state };
  }

  /** A job's state now (asking keeps it from being taken for an orphan). */
  status(id: string): JobState {
    return this.touch(this.find(id));
  }

  /** Ask a running job to stop; answers its state (it reads `cancelled` once the work stopped). */
  cancel(id: string): JobState {
    const job = this.find(id);
    job.abort.abort(E.ERR_CANCELLED('cancelled by its follower'));
    return this.touch(job);
  }

  /** Stop every running job (the actor is stopping). */
  cancelAll(): void {
    for (const j of this.jobs.values()) {
      j.abort.abort(E.ERR_CANCELLED('the node is stopping'));
      clearInterval(j.orphanTimer);
    }
  }

  private find(id: string): Job {
    const job = this.jobs.get(id);
    if (!job) throw E.ERR_NOT_FOUND(`no job ${id} (finished jobs are kept only a while)`);
    return job;
  }

  private touch(job: Job): JobState {
    job.lastAsked = this.now();
    const s = job.state;
    if (s.state === 'running') s.elapsedMs = job.lastAsked - s.startedAt;
    return { ...s };
  }

  private finish(
    job: Job,
    state: JobState['state'],
    end: Pick<JobState, 'result' | 'error'>,
  ): void {
    clearInterval(job.orphanTimer);
    Object.assign(job.state, end, { state, elapsedMs: this.now() - job.state.startedAt });
  }

  private jobOnOrphanCheck(job: Job): void {
    if (job.state.state === 'running' && this.now() - job.lastAsked >= this.orphanMs) {
      job.abort.abort(E.ERR_CANCELLED(`nobody asked about it for ${this.orphanMs / 1000} s`));
    }
  }

  private prune(): void {
    const finished = [...this.jobs.values()].filter((j) => j.state.state !== 'running');
    for (const j of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) {
      this.jobs.delete(j.state.id);
    }
  }
}
