/**
 * Supervisor fixtures: specs for the probe actor, and a helper that always
 * stops the supervisor (and its worker threads) after the test.
 */
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { Supervisor } from '../../supervisor/supervisor.js';
import type { ChildSpecInput } from '../../supervisor/child-spec.js';

export const PROBE = fileURLToPath(new URL('../fixtures/actors/probe.js', import.meta.url));

/** A probe child spec; `peers` are the names it may forward to and trusts. */
export function probe(
  name: string,
  extra: Partial<ChildSpecInput> = {},
  peers: string[] = [],
): ChildSpecInput {
  return {
    name,
    module: PROBE,
    mailbox: { concurrency: 64 },
    ...extra,
    options: { peers, ...(extra.options ?? {}) },
  };
}

/** A logger that keeps records in memory for assertions (and stays quiet). */
export function memoryLogger(level = 'info'): {
  logger: Logger;
  records: Array<Record<string, unknown>>;
} {
  const records: Array<Record<string, unknown>> = [];
  const stream = {
    write(line: string) {
      records.push(JSON.parse(line) as Record<string, unknown>);
    },
  };
  return { logger: pino({ level }, stream), records };
}

/** Start a supervisor, run `fn`, always stop it. */
export async function withSupervisor<T>(
  input: Record<string, unknown>,
  fn: (sup: Supervisor, records: Array<Record<string, unknown>>) => Promise<T>,
): Promise<T> {
  const { logger, records } = memoryLogger();
  const sup = new Supervisor(input, { logger });
  try {
    await sup.start();
    return await fn(sup, records);
  } finally {
    await sup.stop('test over');
  }
}
