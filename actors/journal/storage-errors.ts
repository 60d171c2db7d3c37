/**
 * How LMDB's failures reach the journal's callers: as coded errors (a full
 * disk is its own code), and without lmdb-js's own unobservable rejection
 * taking the worker down.
 */
import { statfsSync } from 'node:fs';
import { E } from '../../runtime/errors.js';
import type { MeshError } from '../../runtime/errors.js';

/**
 * lmdb-js, when a commit fails (disk full), rejects the writes' promises and
 * also an internal promise of its own that nobody can observe; unhandled, it
 * would take the worker down — though the failure was already reported to the
 * caller as ERR_STORAGE_FULL. Swallow exactly that one; anything else stays a
 * crash, as an unhandled rejection must.
 */
const LMDB_COMMIT_FAILED = 'Commit failed (see commitError for details)';
let commitFailureFilterInstalled = false;
export function installCommitFailureFilter(): void {
  if (commitFailureFilterInstalled) return;
  commitFailureFilterInstalled = true;
  process.on('unhandledRejection', (reason) => {
    if (reason instanceof Error && reason.message === LMDB_COMMIT_FAILED) {
      (reason as { commitError?: Promise<unknown> }).commitError?.catch(() => {});
      return;
    }
    throw reason;
  });
}

/** Below this much free space a failed write is taken to be a full disk. */
const FULL_BELOW_BYTES = 1024 * 1024;

/**
 * Disk full is its own code: the operator frees space and appends resume.
 * LMDB does not always say ENOSPC — a short write on a full tmpfs surfaces as
 * EIO — so an I/O error is also checked against the filesystem's free space.
 */
export function storageError(err: unknown, dir: string): MeshError {
  const message = err instanceof Error ? err.message : String(err);
  if (/ENOSPC|No space left|MDB_MAP_FULL|-30792/.test(message) || lowOnSpace(dir)) {
    return E.ERR_STORAGE_FULL(`journal storage is full: ${message}`);
  }
  return E.ERR_STORAGE(`journal storage failed: ${message}`);
}

function lowOnSpace(dir: string): boolean {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize < FULL_BELOW_BYTES;
  } catch {
    return false;
  }
}
