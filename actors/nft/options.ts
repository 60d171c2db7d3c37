/**
 * The nft actor's options (child spec `options`, filled by supervisor/config.ts
 * from `[nft]` and `[mesh]`), validated once at start: a bad one stops the
 * actor's init with ERR_INVALID_OPTION naming the field.
 */
import { z } from 'zod';
import { nonNegativeInt, oneOf, parseOptions, positiveInt } from '../../runtime/options.js';
import { parseCidr } from './addr.js';
import { NAME } from './names.js';

export const BACKENDS = ['auto', 'nft', 'memory'] as const;

/** An absolute path to the nft binary: never looked up on PATH, never a shell word. */
const NFT_PATH = /^(\/[A-Za-z0-9._+-]+)+$/;

const schema = z.object({
  /** auto: nft if it works here (root or CAP_NET_ADMIN), else memory with a loud warning. */
  backend: oneOf(BACKENDS).default('auto'),
  /** Our table, family inet; the executor owns it and touches nothing else. */
  table: z
    .string({ error: 'must be a string' })
    .regex(NAME, { error: 'must match ^[a-z][a-z0-9_]{0,31}$' })
    .default('meshnode'),
  nft: z
    .string({ error: 'must be an absolute path' })
    .regex(NFT_PATH, { error: 'must be an absolute path' })
    .default('/usr/sbin/nft'),
  meshCidrs: z
    .array(
      z.string({ error: 'must be a CIDR' }).refine((s) => parseCidr(s) !== null, {
        error: 'must be a CIDR with its host bits zero, like 10.0.0.0/8 or fd00::/8',
      }),
    )
    .min(1, { error: 'must list at least one CIDR' })
    .default(['10.0.0.0/8', 'fd00::/8']),
  /** Requests arriving within this window share one transaction. */
  coalesceMs: nonNegativeInt().default(2),
  /** Full reconcile (listing + diff) period, once the desired state is known. */
  reconcileMs: positiveInt().default(60_000),
  /** Cheap structural check period (`nft -c`, ~10 ms): a deleted table is back within it + a reconcile. */
  checkMs: positiveInt().default(1000),
  /** Where batch files are written (STATE_DIR/nft); a private temp dir when absent. */
  stateDir: z.string({ error: 'must be a path' }).optional(),
});

export type NftOptions = z.output<typeof schema>;

export function parseNftOptions(input: unknown): NftOptions {
  return parseOptions(schema, input);
}
