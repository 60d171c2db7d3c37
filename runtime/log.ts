/**
 * Structured JSON logging. One pino instance writes every line, on the main
 * thread, to stdout (journald under systemd). Actors log through a
 * `Logger` that forwards records over a dedicated MessagePort.
 *
 * This file is what workers import, so it must not import pino; the main
 * thread's side is supervisor/logger.ts.
 *
 * Why not pino inside each worker: importing it costs ~13 ms of every
 * worker's start (measured here), which is a third of the restart budget,
 * and several writers on fd 1 interleave lines. Forwarding keeps one writer;
 * records posted before a worker dies are still delivered (postMessage
 * queues them), so a crashing actor's last words are not lost.
 */
import type { MessagePort } from 'node:worker_threads';

export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
export const LEVELS: readonly Level[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

export interface Logger {
  trace(fields: Record<string, unknown>, msg: string): void;
  debug(fields: Record<string, unknown>, msg: string): void;
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
  fatal(fields: Record<string, unknown>, msg: string): void;
  /** Whether `level` is logged now: guard a record that costs something to build. */
  enabled(level: Level): boolean;
}

/** A record as it crosses from a worker to the main thread. */
export interface LogRecord {
  level: Level;
  fields: Record<string, unknown>;
  msg: string;
}

/** Worker side: a Logger whose records go to the main thread's pino. */
export function createForwardingLogger(
  port: MessagePort,
  level: string,
): Logger & { setLevel(level: string): void } {
  let min = LEVELS.indexOf(level as Level);
  const make =
    (lvl: Level, rank: number) =>
    (fields: Record<string, unknown>, msg: string): void => {
      if (rank < min) return;
      port.postMessage({ level: lvl, fields: serialisable(fields), msg } satisfies LogRecord);
    };
  return {
    trace: make('trace', 0),
    debug: make('debug', 1),
    info: make('info', 2),
    warn: make('warn', 3),
    error: make('error', 4),
    fatal: make('fatal', 5),
    enabled: (lvl: Level) => LEVELS.indexOf(lvl) >= min,
    setLevel: (next: string) => {
      const rank = LEVELS.indexOf(next as Level);
      if (rank >= 0) min = rank;
    },
  };
}

/** Errors do not survive structured clone with their stack; flatten them. */
function serialisable(fields: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const key in fields) {
    const v = fields[key];
    if (v instanceof Error) {
      out ??= { ...fields };
      out[key] = { message: v.message, code: (v as { code?: unknown }).code, stack: v.stack };
    }
  }
  return out ?? fields;
}
