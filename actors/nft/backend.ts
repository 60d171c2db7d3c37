/**
 * Where batches go. The executor plans the same batches whatever the
 * backend; a backend only commits one (all or nothing), checks one without
 * committing, lists the table, and runs the cheap structural check.
 *
 *  - NftBackend (nft-backend.ts): the kernel, through the nft binary.
 *  - MemoryBackend (here): the table as a model in memory, for unprivileged
 *    runs and tests. It refuses what nft would refuse and honours expiry
 *    (an element past its timeout is gone), but NOTHING IS ENFORCED: no
 *    packet ever meets it. The actor says so loudly at start.
 */
import type { Batch } from './batch.js';
import type { Snapshot } from './listing.js';
import { TableModel } from './model.js';
import type { BackendKind } from '../../runtime/protocol/nft.js';

export interface Backend {
  readonly kind: BackendKind;
  /**
   * The kernel restarts a live element's timeout on a plain `add element`
   * (newer kernels), so a refresh needs no delete — a delete in a
   * transaction costs the kernel an RCU grace period (~10-20 ms here).
   * Probed once at start; absent or false: refresh by delete-then-add.
   */
  readonly refreshByAdd?: boolean;
  /** The table now; null when it does not exist. */
  read(): Promise<Snapshot | null>;
  /** Commit `batch` (rendered as `text`) as one transaction; resolves once committed. */
  commit(batch: Batch, text: string): Promise<void>;
  /** Check `batch` as a transaction would, committing nothing. */
  check(batch: Batch, text: string): Promise<void>;
  /** The cheap check (batch.ts renderProbe): true when our structure is intact. */
  probe(text: string): Promise<boolean>;
  close(): Promise<void>;
}

export class MemoryBackend implements Backend {
  readonly kind = 'memory' as const;
  private readonly kernel = new TableModel();

  async read(): Promise<Snapshot | null> {
    return this.kernel.snapshot(Date.now());
  }

  async commit(batch: Batch): Promise<void> {
    this.kernel.commit(batch, Date.now());
  }

  async check(batch: Batch): Promise<void> {
    this.kernel.clone().commit(batch, Date.now());
  }

  /** Nothing outside this process can touch a table in memory. */
  async probe(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {}
}
