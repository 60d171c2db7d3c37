/**
 * Child specs and supervisor options: plain data, defaults merged, each field
 * validated once (runtime/options.ts names the field in the error).
 *
 * restart (OTP):
 *   permanent — always restarted;
 *   transient — restarted only after an abnormal exit (a crash, a non-zero
 *               exit, a kill by the heartbeat); an actor that calls exit()
 *               is done;
 *   temporary — never restarted.
 * strategy:
 *   one_for_one  — only the failed child is restarted;
 *   rest_for_one — the failed child and every child started after it are
 *                  stopped (in reverse) and started again (in order);
 *   one_for_all  — every child is stopped and started again.
 */
import { pathToFileURL } from 'node:url';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { invalidOption } from '../runtime/errors.js';
import { actorName, nonNegativeInt, oneOf, parseOptions, positiveInt } from '../runtime/options.js';

export const RESTARTS = ['permanent', 'transient', 'temporary'] as const;
export const STRATEGIES = ['one_for_one', 'rest_for_one', 'one_for_all'] as const;
export const SPARE_POLICIES = ['after_restart', 'always', 'never'] as const;

/** Defaults and why. */
const DEFAULTS = {
  /** Long enough for an actor to flush a batch and close LMDB; systemd's stop timeout is larger. */
  shutdownMs: 5000,
  /** Init of the journal opens LMDB and may replay; generous, but bounded. */
  initTimeoutMs: 10_000,
  /** Every ask has a timeout; 5 s is far above any healthy handler's p99. */
  askTimeoutMs: 5000,
  /** Mailbox high-water mark: past it, asks are refused with ERR_MAILBOX_FULL. */
  highWater: 1024,
  /** One message at a time, like a gen_server, unless the actor batches. */
  concurrency: 1,
  /** A stuck event loop is noticed within intervalMs + timeoutMs. */
  heartbeatIntervalMs: 1000,
  heartbeatTimeoutMs: 2000,
  /** Heap cap per actor: an actor that leaks is killed (ERR_WORKER_OUT_OF_MEMORY) and restarted. */
  maxOldGenerationSizeMb: 256,
} as const;

const resourceLimits = z
  .strictObject({
    maxOldGenerationSizeMb: positiveInt().default(DEFAULTS.maxOldGenerationSizeMb),
    maxYoungGenerationSizeMb: positiveInt().optional(),
    codeRangeSizeMb: positiveInt().optional(),
    stackSizeMb: positiveInt().optional(),
  })
  .prefault({});

export const childSpecSchema = z.strictObject({
  name: actorName(),
  /** Path (relative to the working directory) or file: URL of the actor module. */
  module: z
    .string({ error: 'must be a module path or file: URL' })
    .min(1, { error: 'must not be empty' }),
  restart: oneOf(RESTARTS).default('permanent'),
  shutdownMs: nonNegativeInt().default(DEFAULTS.shutdownMs),
  initTimeoutMs: positiveInt().default(DEFAULTS.initTimeoutMs),
  askTimeoutMs: positiveInt().default(DEFAULTS.askTimeoutMs),
  mailbox: z
    .strictObject({
      highWater: positiveInt().default(DEFAULTS.highWater),
      concurrency: positiveInt().default(DEFAULTS.concurrency),
    })
    .prefault({}),
  heartbeat: z
    .strictObject({
      intervalMs: positiveInt().default(DEFAULTS.heartbeatIntervalMs),
      timeoutMs: positiveInt().default(DEFAULTS.heartbeatTimeoutMs),
    })
    .prefault({}),
  resourceLimits,
  options: z.record(z.string(), z.unknown(), { error: 'must be a table of options' }).default({}),
});

export type ChildSpecInput = z.input<typeof childSpecSchema>;
export type ChildSpec = z.output<typeof childSpecSchema> & { moduleUrl: string };

export const supervisorSchema = z.strictObject({
  strategy: oneOf(STRATEGIES).default('one_for_one'),
  intensity: z
    .strictObject({
      maxRestarts: nonNegativeInt().default(5),
      periodMs: positiveInt().default(10_000),
    })
    .prefault({}),
  /** Start order is the array's order; names must be unique. */
  children: z.array(childSpecSchema, { error: 'must be a list of child specs' }),
  /**
   * Undirected pairs that get a channel. Which actions may flow is each
   * receiver's trust declaration; the channel is the capability.
   */
  topology: z
    .array(z.tuple([actorName(), actorName()]), { error: 'must be a list of [a, b] pairs' })
    .default([]),
  logLevel: oneOf(['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const).default('info'),
  /**
   * A warm spare worker (runtime loaded, no actor) makes a restart skip
   * thread start-up. `after_restart`: kept from the first restart on, so a
   * node that never restarts an actor pays nothing (~10 MB otherwise);
   * `always`: from start; `never`.
   */
  spareWorker: oneOf(SPARE_POLICIES).default('after_restart'),
});

export type SupervisorInput = z.input<typeof supervisorSchema>;
export type SupervisorOptions = Omit<z.output<typeof supervisorSchema>, 'children'> & {
  children: ChildSpec[];
};

/** Merge defaults, validate every field once, check cross-field rules. */
export function parseSupervisorOptions(input: unknown): SupervisorOptions {
  const parsed = parseOptions(supervisorSchema, input);
  const names = new Set<string>();
  parsed.children.forEach((c, i) => {
    if (names.has(c.name) || c.name === 'admin') {
      parseFail(`options.children[${i}].name`, `must be unique and not "admin" (got ${c.name})`);
    }
    names.add(c.name);
  });
  parsed.topology.forEach(([a, b], i) => {
    for (const n of [a, b]) {
      if (!names.has(n)) parseFail(`options.topology[${i}]`, `names unknown child ${n}`);
    }
    if (a === b) parseFail(`options.topology[${i}]`, 'must join two different children');
  });
  return {
    ...parsed,
    children: parsed.children.map((c) => ({ ...c, moduleUrl: moduleUrl(c.module) })),
  };
}

function moduleUrl(module: string): string {
  if (module.startsWith('file:')) return module;
  return pathToFileURL(isAbsolute(module) ? module : resolve(module)).href;
}

function parseFail(path: string, expectation: string): never {
  throw invalidOption(path, expectation);
}
