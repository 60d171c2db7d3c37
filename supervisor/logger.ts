/**
 * The main thread's logging: one pino instance writes every line to stdout;
 * actors' records arrive over their log ports (see runtime/log.ts for the
 * worker side and why). Where the lines go decides their form:
 *
 *  - journald (systemd sets JOURNAL_STREAM to the device:inode of the stream
 *    it gave us as stdout): each JSON line starts with `<N>`, its syslog
 *    priority, which journald strips and records as PRIORITY, so
 *    `journalctl -u meshnode -p err` shows errors and `-p warning` more;
 *  - a terminal: pino-pretty, one readable line per record (`npm start`);
 *  - anything else (a pipe, a file, the tests): JSON lines, as they are.
 *
 * Every form is written synchronously, so a process that exits loses nothing.
 */
import { fstatSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pino } from 'pino';
import type { DestinationStream, Logger as PinoLogger } from 'pino';
import type Pretty from 'pino-pretty';
import { LEVELS } from '../runtime/log.js';
import type { LogRecord } from '../runtime/log.js';

/**
 * pino's numeric levels → syslog priorities (sd-daemon(3)): trace and debug
 * are 7 (debug), info 6, warn 4 (warning), error 3 (err), fatal 2 (crit).
 */
const SYSLOG_PRIORITY: Readonly<Record<number, number>> = {
  10: 7,
  20: 7,
  30: 6,
  40: 4,
  50: 3,
  60: 2,
};
/** pino writes `{"level":N,` first: the level is read from there, not by parsing the line. */
const LEVEL_FIELD = /^\{"level":(\d+)/;
/**
 * pino-pretty is loaded only for a terminal: it costs ~18 ms of start-up
 * (measured here), which a node under systemd or in a test never needs.
 */
const load = createRequire(import.meta.url);

export type LogFormat = 'journald' | 'pretty' | 'json';

/** The main thread's root logger (`destination` given: JSON lines to it, for tests). */
export function createRootLogger(
  level: string,
  destination?: NodeJS.WritableStream,
  env: NodeJS.ProcessEnv = process.env,
  fd = 1,
): PinoLogger {
  const options = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (destination) return pino(options, destination);
  return pino(options, streamFor(logFormat(env, fd), fd, env));
}

/** Which form the lines on `fd` take (see the file's comment). */
export function logFormat(env: NodeJS.ProcessEnv, fd: number): LogFormat {
  if (env.MESHNODE_LOG_FORMAT === 'json' || env.MESHNODE_LOG_FORMAT === 'pretty') {
    return env.MESHNODE_LOG_FORMAT;
  }
  if (env.JOURNAL_STREAM) {
    try {
      const st = fstatSync(fd);
      // Only the stream journald handed us: a redirect under the unit is not the journal.
      if (env.JOURNAL_STREAM === `${st.dev}:${st.ino}`) return 'journald';
    } catch {
      // fd closed: fall through
    }
  }
  return fd === 1 && process.stdout.isTTY ? 'pretty' : 'json';
}

/** Main side: write forwarded records through a child of the root logger. */
export function logPortOnMessage(target: PinoLogger): (record: LogRecord) => void {
  return (record) => {
    if (LEVELS.includes(record.level)) target[record.level](record.fields, record.msg);
  };
}

function streamFor(format: LogFormat, fd: number, env: NodeJS.ProcessEnv): DestinationStream {
  switch (format) {
    case 'journald':
      return {
        write(line: string) {
          const level = Number(LEVEL_FIELD.exec(line)?.[1] ?? 30);
          writeSync(fd, `<${SYSLOG_PRIORITY[level] ?? 6}>${line}`);
        },
      };
    case 'pretty':
      return (load('pino-pretty') as typeof Pretty)({
        sync: true,
        destination: fd,
        colorize: env.NO_COLOR === undefined,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname',
        singleLine: true,
      });
    case 'json':
      return pino.destination({ dest: fd, sync: true });
  }
}
