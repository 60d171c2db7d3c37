/**
 * Restart intensity, as OTP defines it: if more than `maxRestarts` restarts
 * happen within the last `periodMs`, the supervisor gives up — it stops
 * every child and exits non-zero so systemd restarts the whole node.
 *
 * A pure function over the restart history so the rule is tested without
 * threads or clocks.
 */
export interface IntensityLimit {
  maxRestarts: number;
  periodMs: number;
}

export interface IntensityVerdict {
  /** Restart times still inside the window, including `now`. */
  history: number[];
  /** True when this restart is one too many. */
  exceeded: boolean;
}

/** Record a restart at `now` and say whether the limit is exceeded. */
export function recordRestart(
  history: readonly number[],
  now: number,
  limit: IntensityLimit,
): IntensityVerdict {
  const recent = history.filter((t) => now - t < limit.periodMs);
  recent.push(now);
  return { history: recent, exceeded: recent.length > limit.maxRestarts };
}
