/**
 * The nft actor's options (child spec `options`, filled by supervisor/config.ts
 * from `[nft]` and `[mesh]`), checked once at start: a bad one stops the
 * actor's init with ERR_INVALID_OPTION naming the field.
 *
 * Checked by hand, not with zod: the daemon's config is already validated
 * with zod on the main thread, and zod would cost this worker ~15 MB of
 * resident memory for eight fields (the idle-RSS budget is per node).
 */
import { invalidOption } from '../../runtime/errors.js';
import { parseCidr } from './addr.js';
import { NAME } from './names.js';

export const BACKENDS = ['auto', 'nft', 'memory'] as const;

/** An absolute path to the nft binary: never looked up on PATH, never a shell word. */
const NFT_PATH = /^(\/[A-Za-z0-9._+-]+)+$/;

export interface NftOptions {
  /** auto: nft if it works here (root or CAP_NET_ADMIN), else memory with a loud warning. */
  backend: (typeof BACKENDS)[number];
  /** Our table, family inet; the executor owns it and touches nothing else. */
  table: string;
  /** Manage a table of our name that carries no meshnode mark (else ERR_NFT_FOREIGN_TABLE). */
  adoptTable: boolean;
  nft: string;
  meshCidrs: string[];
  /** Requests arriving within this window share one transaction. */
  coalesceMs: number;
  /** Full reconcile (listing + diff) period, once the desired state is known. */
  reconcileMs: number;
  /** Cheap structural check period (`nft -c`, ~10 ms): a deleted table is back within it + a reconcile. */
  checkMs: number;
  /** Where batch files are written (STATE_DIR/nft); a private temp dir when absent. */
  stateDir?: string;
}

const DEFAULTS: Omit<NftOptions, 'stateDir'> = {
  backend: 'auto',
  table: 'meshnode',
  adoptTable: false,
  nft: '/usr/sbin/nft',
  meshCidrs: ['10.0.0.0/8', 'fd00::/8'],
  coalesceMs: 2,
  reconcileMs: 60_000,
  checkMs: 2000,
};

export function parseNftOptions(input: unknown): NftOptions {
  const raw = (input && typeof input === 'object' ? input : {}) as Record<string, unknown>;
  const o = { ...DEFAULTS } as NftOptions;
  const given = (k: keyof NftOptions) => raw[k] !== undefined;
  if (given('backend')) {
    if (!BACKENDS.includes(raw.backend as never))
      fail('backend', `must be one of ${BACKENDS.join(', ')}`);
    o.backend = raw.backend as NftOptions['backend'];
  }
  if (given('table'))
    o.table = matching('table', raw.table, NAME, 'must match ^[a-z][a-z0-9_]{0,31}$');
  if (given('adoptTable')) {
    if (typeof raw.adoptTable !== 'boolean') fail('adoptTable', 'must be true or false');
    o.adoptTable = raw.adoptTable as boolean;
  }
  if (given('nft')) o.nft = matching('nft', raw.nft, NFT_PATH, 'must be an absolute path');
  if (given('meshCidrs')) {
    const list = raw.meshCidrs;
    if (!Array.isArray(list)) fail('meshCidrs', 'must be an array of CIDRs');
    if (list.length === 0) fail('meshCidrs', 'must list at least one CIDR');
    list.forEach((c, i) => {
      if (typeof c !== 'string' || parseCidr(c) === null) {
        fail(
          `meshCidrs[${i}]`,
          'must be a CIDR with its host bits zero, like 10.0.0.0/8 or fd00::/8',
        );
      }
    });
    o.meshCidrs = list as string[];
  }
  if (given('coalesceMs')) o.coalesceMs = int('coalesceMs', raw.coalesceMs, 0);
  if (given('reconcileMs')) o.reconcileMs = int('reconcileMs', raw.reconcileMs, 1);
  if (given('checkMs')) o.checkMs = int('checkMs', raw.checkMs, 1);
  if (given('stateDir')) {
    if (typeof raw.stateDir !== 'string') fail('stateDir', 'must be a path');
    o.stateDir = raw.stateDir as string;
  }
  return o;
}

function matching(field: string, v: unknown, re: RegExp, expectation: string): string {
  if (typeof v !== 'string' || !re.test(v)) fail(field, expectation);
  return v as string;
}

function int(field: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    fail(field, min === 0 ? 'must be a non-negative integer' : 'must be a positive integer');
  }
  return v as number;
}

function fail(field: string, expectation: string): never {
  throw invalidOption(`options.${field}`, expectation);
}
