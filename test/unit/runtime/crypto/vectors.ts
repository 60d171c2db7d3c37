/**
 * Where the public test vectors live: ../shared/vectors beside the repository
 * (see shared/vectors/README.md), or MESHNODE_VECTORS. Missing vectors are a
 * failure, never a skip: every vector must pass.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

// This file compiles to dist/test/unit/runtime/crypto/vectors.js; the repo root is five levels up.
const DEFAULT_DIR = fileURLToPath(new URL('../../../../../../shared/vectors/', import.meta.url));

export const VECTORS_DIR = process.env.MESHNODE_VECTORS ?? DEFAULT_DIR;

export function vectorPath(...parts: string[]): string {
  const p = join(VECTORS_DIR, ...parts);
  if (!existsSync(p))
    throw new Error(`test vector ${p} is missing (set MESHNODE_VECTORS to the vectors directory)`);
  return p;
}

export function readVectorJson<T>(...parts: string[]): T {
  return JSON.parse(readFileSync(vectorPath(...parts), 'utf8')) as T;
}
