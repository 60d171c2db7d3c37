/**
 * One node per state directory. LMDB itself happily lets two processes write
 * one environment, and two nodes signing as the same key would fork its feed,
 * so the daemon takes `meshnode.pid` in the state directory before it starts
 * any actor, and a second process refuses with ERR_STATE_LOCKED.
 *
 * The file is created with O_EXCL. A file left by a process that no longer
 * exists (SIGKILL, power loss) is stale and taken over; the takeover goes
 * through a rename of a fresh file so two starters racing for a stale lock
 * cannot both win silently — the loser re-reads and sees the winner's pid.
 */
import {
  closeSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { E, stateLocked } from '../runtime/errors.js';

export const LOCK_FILE = 'meshnode.pid';

export interface StateLock {
  path: string;
  release(): void;
}

export function lockStateDir(dir: string): StateLock {
  const path = join(dir, LOCK_FILE);
  try {
    writeExclusive(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const holder = readPid(path);
    if (holder !== null && holder !== process.pid && processAlive(holder))
      throw stateLocked(dir, holder);
    const fresh = `${path}.${process.pid}`;
    writeExclusive(fresh);
    renameSync(fresh, path);
    if (readPid(path) !== process.pid) throw stateLocked(dir, readPid(path) ?? -1);
  }
  return {
    path,
    release() {
      try {
        if (readPid(path) === process.pid) unlinkSync(path);
      } catch {
        // Already gone: nothing to release.
      }
    },
  };
}

function writeExclusive(path: string): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, `${process.pid}\n`);
  } catch (err) {
    // An empty pid file must not stay behind (it names no holder); a full disk is said so.
    closeSync(fd);
    rmSync(path, { force: true });
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC')
      throw E.ERR_STORAGE_FULL(`cannot write ${path}: no space left on device`, {
        cause: err,
      });
    throw err;
  }
  closeSync(fd);
}

function readPid(path: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Whether a process with this pid exists (EPERM: it does, and is someone else's). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
