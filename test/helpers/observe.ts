/**
 * Watching a live supervisor from a test: its events in order, the next
 * event for one child, and each child's current worker thread.
 */
import type { Supervisor } from '../../supervisor/supervisor.js';

export const SUPERVISOR_EVENTS = [
  'child:up',
  'child:exit',
  'child:stopped',
  'child:restarted',
  'escalate',
] as const;

/**
 * Record events as `kind:name` strings (`up:a`, `exit:a`, `stopped:a`,
 * `restarted:a`, `escalate:a`) in the order the supervisor emitted them.
 */
export function recordEvents(sup: Supervisor): string[] {
  const log: string[] = [];
  for (const event of SUPERVISOR_EVENTS) {
    sup.on(event, (p: { name: string }) => log.push(`${event.replace('child:', '')}:${p.name}`));
  }
  return log;
}

/** The next `event` for child `name` (any child if omitted); rejects after `ms`. */
export function nextEvent<T extends { name: string } = { name: string } & Record<string, unknown>>(
  sup: Supervisor,
  event: string,
  name?: string,
  ms = 5000,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      sup.off(event, listener);
      reject(new Error(`no ${event}${name ? ` for ${name}` : ''} within ${ms} ms`));
    }, ms);
    const listener = (p: T) => {
      if (name !== undefined && p.name !== name) return;
      clearTimeout(timer);
      sup.off(event, listener);
      resolve(p);
    };
    sup.on(event, listener);
  });
}

/** Each child's current worker threadId (null when it has no running worker). */
export function threadIds(sup: Supervisor): Record<string, number | null> {
  return Object.fromEntries(sup.info().map((c) => [c.name, c.threadId]));
}

/** One child's info row. */
export function infoOf(sup: Supervisor, name: string) {
  const row = sup.info().find((c) => c.name === name);
  if (!row) throw new Error(`no child ${name}`);
  return row;
}
