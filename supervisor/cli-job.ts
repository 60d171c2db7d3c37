/**
 * Following a node's job from the CLI (runtime/jobs.ts): start it, ask its
 * progress until it ends, cancel it on Ctrl-C. Progress goes to stderr on
 * a terminal (one line, redrawn: entries, rate, time left), or with --json
 * to stdout as one `{"v":1,"event":"progress",…}` line per poll before the
 * final envelope. No ask waits for the work, so nothing times out a job
 * that is still making progress.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { E, errorFromPayload } from '../runtime/errors.js';
import type { JobState } from '../runtime/protocol/jobs.js';
import type { VerifyReport } from '../runtime/protocol/journal.js';
import { ENVELOPE, errorLine, okLine } from './cli-format.js';
import { renderVerify } from './cli-render-ops.js';

/** How often a follower asks: often enough to look live, rare enough to cost the node nothing. */
export const JOB_POLL_MS = 500;
/** After a cancel, how long to wait for the work to stop before giving up on it. */
const CANCEL_WAIT_MS = 10_000;

export type Call = (method: string, params?: Record<string, unknown>) => Promise<unknown>;

/** The admin methods of the verify job (runtime/protocol/admin.ts FORWARDS). */
export const VERIFY_JOB = {
  start: 'journal.verify',
  status: 'journal.job',
  cancel: 'journal.job.cancel',
} as const;

export interface FollowOptions {
  /** The admin methods: start (no params), status and cancel ({ id }). */
  methods: { start: string; status: string; cancel: string };
  signal?: AbortSignal;
  /** Each state seen while it runs. */
  onProgress?: (s: JobState) => void;
  pollMs?: number;
}

/** Run a job to its end: done, failed or cancelled (by `signal` or by the node). */
export async function followJob(call: Call, o: FollowOptions): Promise<JobState> {
  let s = (await call(o.methods.start)) as JobState;
  let cancelledAt = 0;
  while (s.state === 'running') {
    o.onProgress?.(s);
    if (o.signal?.aborted && cancelledAt === 0) {
      cancelledAt = Date.now();
      s = (await call(o.methods.cancel, { id: s.id })) as JobState;
      continue;
    }
    if (cancelledAt > 0 && Date.now() - cancelledAt > CANCEL_WAIT_MS) {
      throw E.ERR_TIMEOUT(`the job did not stop within ${CANCEL_WAIT_MS / 1000} s of its cancel`);
    }
    await sleep(o.pollMs ?? JOB_POLL_MS, undefined, {
      signal: cancelledAt ? undefined : o.signal,
    }).catch(() => {});
    s = (await call(o.methods.status, { id: s.id })) as JobState;
  }
  return s;
}

/** Entries per second so far, and seconds left at that rate (undefined while unknown). */
export function pace(s: JobState): { rate: number; etaSeconds: number | undefined } {
  const rate = s.elapsedMs > 0 ? (s.done * 1000) / s.elapsedMs : 0;
  const left = s.total - s.done;
  return { rate, etaSeconds: rate > 0 ? Math.ceil(left / rate) : undefined };
}

/** One progress line for a terminal (the caller redraws it with \r). */
export function progressLine(s: JobState, what: string): string {
  const { rate, etaSeconds } = pace(s);
  const pct = s.total > 0 ? Math.floor((s.done * 100) / s.total) : 0;
  const n = (x: number) => x.toLocaleString('en-US');
  const eta = etaSeconds === undefined ? '' : `, ${etaSeconds} s left`;
  return `${what}: ${n(s.done)} / ${n(s.total)} entries (${pct}%), ${n(Math.round(rate))}/s${eta}`;
}

/** One --json progress event. */
export function progressEvent(s: JobState): string {
  const { rate, etaSeconds } = pace(s);
  return `${JSON.stringify({
    v: ENVELOPE,
    event: 'progress',
    job: s.id,
    done: s.done,
    total: s.total,
    rate: Math.round(rate),
    etaSeconds: etaSeconds ?? null,
  })}\n`;
}

/**
 * `meshnode journal verify`: the verify job followed to its end, its report
 * printed as before. What it came to, for the exit code: a broken journal
 * is a failure (as `nginx -t` fails on a bad config), Ctrl-C a cancel.
 */
export async function verifyCommand(
  call: Call,
  json: boolean,
  write: (text: string) => void,
  signal: AbortSignal,
): Promise<'ok' | 'broken' | 'cancelled'> {
  const tty = !json && process.stderr.isTTY === true;
  const s = await followJob(call, {
    methods: VERIFY_JOB,
    signal,
    onProgress: (p) => {
      if (json) write(progressEvent(p));
      else if (tty) process.stderr.write(`\r\x1b[2K${progressLine(p, 'verifying')}`);
    },
  });
  if (tty) process.stderr.write('\r\x1b[2K');
  if (s.state === 'failed')
    throw errorFromPayload(s.error ?? { code: 'ERR_INTERNAL', message: 'verify failed' });
  if (s.state === 'cancelled') {
    const text = `journal verify cancelled after ${s.done} of ${s.total} entries`;
    if (json) write(errorLine('ERR_CANCELLED', text));
    else process.stderr.write(`meshnode: ${text}\n`);
    return 'cancelled';
  }
  const report = s.result as VerifyReport;
  write(json ? okLine(report) : renderVerify(report));
  return report.ok ? 'ok' : 'broken';
}
