/**
 * A long operator job as every actor that runs one answers it
 * (runtime/jobs.ts): the start, status and cancel asks all answer this.
 */
import { z } from 'zod';

export interface JobState {
  id: string;
  /** What the job does (`verify`). */
  kind: string;
  state: 'running' | 'done' | 'failed' | 'cancelled';
  /** Units of work done so far, of `total` (entries, for verify; 0 of 0 while it counts). */
  done: number;
  total: number;
  /** Epoch ms. */
  startedAt: number;
  elapsedMs: number;
  /** The work's answer, once done. */
  result?: unknown;
  /** Why it failed. */
  error?: { code: string; message: string };
}

/** The request of a job's status and cancel asks. */
export const jobRequest = z.strictObject({ id: z.uuid({ error: 'id must be a job id' }) });
