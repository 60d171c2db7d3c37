/**
 * The main thread's logging: one pino instance writes every JSON line to
 * stdout (journald under systemd); actors' records arrive over their log
 * ports (see runtime/log.ts for the worker side and why).
 */
import { pino } from 'pino';
import type { Logger as PinoLogger } from 'pino';
import { LEVELS } from '../runtime/log.js';
import type { LogRecord } from '../runtime/log.js';

/** The main thread's root logger: pino, JSON lines on stdout (synchronous, so exit loses nothing). */
export function createRootLogger(level: string, destination?: NodeJS.WritableStream): PinoLogger {
  return pino(
    { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** Main side: write forwarded records through a child of the root logger. */
export function logPortOnMessage(target: PinoLogger): (record: LogRecord) => void {
  return (record) => {
    if (LEVELS.includes(record.level)) target[record.level](record.fields, record.msg);
  };
}
