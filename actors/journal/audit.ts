/**
 * The signature audit. An ingested batch has only each author's last entry's
 * signature checked before it is stored (the others ride on it: they chain
 * to it by id); the audit then checks every such entry's own signature, on
 * the verify pool, when ingest has been quiet a while — replication first,
 * then the audit — or at the latest AUDIT_MAX_DEFER_MS after the work first
 * waited, so that under endless ingest it still makes progress. A bad one
 * stops its feed (the entry kept as proof, ERR_FEED_STOPPED from then on).
 */
import type { Logger } from '../../runtime/log.js';
import type { JournalStore } from './store.js';
import type { VerifyPool } from './verify-pool.js';

/** Quiet time after the last ingest before the audit runs (`options.auditIdleMs` overrides it). */
export const AUDIT_IDLE_MS = 200;
/** Longest the audit waits for quiet: under endless ingest it still makes progress. */
const AUDIT_MAX_DEFER_MS = 5000;
/** Entries per audit round: one pool pass and one mark transaction. */
const AUDIT_BATCH = 4000;

/** What the audit needs from the journal actor. */
export interface AuditHost {
  store: JournalStore;
  pool: VerifyPool;
  /** Run a write on the journal's one write lane. */
  onLane<T>(job: () => Promise<T>): Promise<T>;
  /** A stored entry's own signature is invalid: stop its feed. */
  stopFeed(author: string, seq: number, bytes: Uint8Array): Promise<void>;
  /** Entries audited (their own signature checked). */
  audited(count: number): void;
  log: Logger;
}

export class SignatureAudit {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private stopped = false;
  private lastIngestAt = 0;
  /** When the oldest audit work still waiting was first deferred (0: none waiting). */
  private waitingSince = 0;

  constructor(
    private readonly host: AuditHost,
    private readonly idleMs: number,
  ) {}

  /** An ingest committed: the audit waits for quiet again, and has work if `unaudited`. */
  ingestOnCommitted(unaudited: boolean): void {
    this.lastIngestAt = Date.now();
    if (unaudited) this.schedule();
  }

  /** Run soon if there is work (see the header). */
  schedule(): void {
    const { store } = this.host;
    if (this.stopped || this.timer || this.running || store.unaudited().size === 0) return;
    if (this.waitingSince === 0) this.waitingSince = Date.now();
    this.timer = setTimeout(() => {
      this.timer = null;
      const now = Date.now();
      const quiet = now - this.lastIngestAt >= this.idleMs;
      if (!quiet && now - this.waitingSince < AUDIT_MAX_DEFER_MS) {
        this.schedule();
        return;
      }
      this.running = true;
      this.chunk()
        .catch((err: unknown) =>
          this.host.log.warn({ err }, 'signature audit failed; retrying later'),
        )
        .finally(() => {
          this.running = false;
          this.waitingSince = 0;
          this.schedule();
        });
    }, this.idleMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /**
   * Audit up to AUDIT_BATCH entries, across feeds: each one's own signature,
   * on the pool. The other feeds' audit marks move past what was checked,
   * all in one transaction.
   */
  private async chunk(): Promise<void> {
    const { store } = this.host;
    const rows: Array<{ author: string; seq: number; bytes: Uint8Array }> = [];
    const next = new Map<string, number>();
    for (const [author, from] of store.unaudited()) {
      if (rows.length >= AUDIT_BATCH) break;
      if (store.isBlocked(author)) continue;
      const head = store.head(author)?.seq ?? 0;
      const got = store.rangeBytes(author, from, head, AUDIT_BATCH - rows.length);
      for (const r of got) rows.push({ author, seq: r.seq, bytes: r.bytes });
      next.set(author, got.length > 0 ? got.at(-1)!.seq + 1 : head + 1);
    }
    if (next.size === 0) return;
    const bad = rows.length === 0 ? -1 : await this.firstBadSignature(rows.map((r) => r.bytes));
    await this.host.onLane(async () => {
      if (bad >= 0) {
        const row = rows[bad]!;
        next.delete(row.author);
        await this.host.stopFeed(row.author, row.seq, row.bytes);
      }
      // Entries of other feeds after the bad one were not all looked at: those feeds wait.
      for (const r of rows.slice(bad < 0 ? rows.length : bad + 1)) next.delete(r.author);
      await store.markAudited(next);
      this.host.audited(bad < 0 ? rows.length : bad);
    });
  }

  /** Index of the first of `items` (stored entries) whose own signature fails, or -1. */
  private async firstBadSignature(items: Uint8Array[]): Promise<number> {
    const results = await this.host.pool.perThread(items.length, async (pool, from, to) => {
      const bad = (await pool.run(
        { items: items.slice(from, to) },
        { name: 'auditSignatures' },
      )) as number;
      return bad < 0 ? -1 : from + bad;
    });
    return results.find((b) => b >= 0) ?? -1;
  }
}
