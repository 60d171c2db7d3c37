/**
 * A deadline that counts only the time the main thread was there to watch.
 *
 * A plain setTimeout charges a worker for the supervisor's own stalls: when
 * the main thread is busy (serialising admin answers on a loaded machine),
 * the timer fires late, and because Node runs the timers phase before it
 * polls the worker's port, it fires *before* an answer that has been waiting
 * in the port all along. The heartbeat then killed a healthy journal (seen
 * under three CPU hogs in the admin flood test). This deadline ticks instead
 * and charges each tick at most twice its period, so a stall of the watcher
 * counts as two ticks, not as its length; and it decides in a setImmediate,
 * after the poll phase has delivered whatever answer had already arrived.
 * A worker that is really stuck is still declared so after `ms` of watching.
 */

/** Ticks per deadline: fine enough that the charge cap is small against `ms`. */
const TICKS_PER_DEADLINE = 8;
/** Bounds of one tick: not a busy timer for short calls, not coarse for long ones. */
const MIN_TICK_MS = 10;
const MAX_TICK_MS = 250;

/** The time one tick is charged: what elapsed, but no more than two periods. */
export function chargedMs(elapsedMs: number, tickMs: number): number {
  return Math.min(Math.max(0, elapsedMs), 2 * tickMs);
}

export function tickFor(ms: number): number {
  return Math.min(MAX_TICK_MS, Math.max(MIN_TICK_MS, Math.floor(ms / TICKS_PER_DEADLINE)));
}

/**
 * Calls `onExpire` once `ms` of watched time has passed, unless the returned
 * cancel function is called first.
 */
export function watchedDeadline(
  ms: number,
  onExpire: () => void,
  now: () => number = () => performance.now(),
): () => void {
  const tick = tickFor(ms);
  let charged = 0;
  let last = now();
  let cancelled = false;
  const timer = setInterval(() => {
    const t = now();
    charged += chargedMs(t - last, tick);
    last = t;
    if (charged < ms) return;
    clearInterval(timer);
    setImmediate(() => {
      if (!cancelled) onExpire();
    });
  }, tick);
  return () => {
    cancelled = true;
    clearInterval(timer);
  };
}
