/**
 * Options are plain data: defaults merged in by the schema, then each field
 * validated once. Validation is zod's; this file only turns zod's first
 * issue into our coded error with a message that names the field, e.g.
 * `options.children[1].restart must be one of permanent, transient, temporary`.
 */
import { z } from 'zod';
import { invalidOption } from './errors.js';

/** Parse `input` with `schema`, or throw ERR_INVALID_OPTION naming the field under `root`. */
export function parseOptions<S extends z.ZodType>(
  schema: S,
  input: unknown,
  root = 'options',
): z.output<S> {
  const result = schema.safeParse(input, { reportInput: true });
  if (result.success) return result.data;
  const [path, expectation] = describeIssue(result.error.issues[0]!, root);
  throw invalidOption(path, expectation);
}

/**
 * Every problem with `input`, each as "path expectation" (`config check`
 * and a node's start show them all at once, not the first alone); an empty
 * list when it is valid.
 */
export function allProblems(schema: z.ZodType, input: unknown, root = 'options'): string[] {
  const result = schema.safeParse(input, { reportInput: true });
  if (result.success) return [];
  // One problem per field: a refinement after a failed pattern says the same again.
  const byPath = new Map<string, string>();
  for (const issue of result.error.issues) {
    const [path, expectation] = describeIssue(issue, root);
    if (!byPath.has(path)) byPath.set(path, `${path} ${expectation}`);
  }
  return [...byPath.values()];
}

function describeIssue(issue: z.core.$ZodIssue, root: string): [string, string] {
  const path =
    root + issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
  if (issue.code === 'unrecognized_keys') {
    return [path, `has unknown field(s): ${issue.keys.join(', ')}`];
  }
  if (issue.code === 'invalid_type' && issue.input === undefined) return [path, 'is required'];
  return [path, issue.message];
}

/** Field builders with the messages operators read. */
export const positiveInt = () =>
  z
    .number({ error: 'must be a positive integer' })
    .int({ error: 'must be a positive integer' })
    .positive({
      error: 'must be a positive integer',
    });

export const nonNegativeInt = () =>
  z
    .number({ error: 'must be a non-negative integer' })
    .int({ error: 'must be a non-negative integer' })
    .min(0, {
      error: 'must be a non-negative integer',
    });

/**
 * An integer in min..max. Every duration and size in config has a stated
 * maximum: Node turns a timer over 2^31-1 ms into 1 ms, so an unbounded
 * "wait longer" setting became a busy loop.
 */
export const intIn = (min: number, max: number) => {
  const error = `must be an integer in ${min}..${max}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
};

/** The longest timer Node runs as asked (setTimeout's limit, about 24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export const oneOf = <T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `must be one of ${values.join(', ')}` });

export const actorName = () =>
  z.string({ error: 'must be a string' }).regex(/^[a-z][a-z0-9_]{0,31}$/, {
    error: 'must match ^[a-z][a-z0-9_]{0,31}$',
  });
