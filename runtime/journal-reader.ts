/**
 * A read-only handle on the journal's LMDB environment, for actors that
 * read its views (the grant authorizer) without asking the journal actor:
 * one grant request used to cost 8–10 grants↔journal round trips, each a
 * structured clone both ways and a turn of the journal's mailbox, behind
 * whatever the journal was committing. The writer stays the journal actor
 * alone; here every read sees the last committed transaction (LMDB readers
 * never block the writer, nor see a half-written one).
 *
 * The layout constants are the journal store's own (actors/journal/store.ts
 * opens the environment with them), so there is one description of it.
 */
import { join } from 'node:path';
import { open } from 'lmdb';
import type { Database, RootDatabase } from 'lmdb';
import { decodeEntry } from './domain/codec.js';
import type { Entry } from './domain/codec.js';
import type { ViewName, ViewReader, ViewRowOf } from './domain/views.js';
import { E } from './errors.js';

/** The environment: one file, named databases (the store's header lists them all). */
export const JOURNAL_LAYOUT = {
  dir: 'journal',
  file: 'journal.mdb',
  maxDbs: 12,
  /** On-disk layout version (the store migrates older ones; a reader refuses another). */
  format: 2,
} as const;

/** Rows of one view page at most (the journal's `view` answer pages the same way). */
const MAX_ROWS = 1000;

/** The views database, as both the store and the reader open it. */
export type ViewsDb = Database<Record<string, unknown>, [string, string]>;

/** Rows of `view` in key order, at most `limit`, only keys after `after` if given. */
export function viewPage<V extends ViewName>(
  views: ViewsDb,
  view: V,
  limit: number,
  after?: string,
): Array<[string, ViewRowOf[V]]> {
  const out: Array<[string, ViewRowOf[V]]> = [];
  for (const { key, value } of views.getRange({
    start: [view, after ?? ''],
    end: [view + '\u0000', ''],
    // One more: the row at `after` itself, skipped below.
    limit: after === undefined ? limit : limit + 1,
  })) {
    if (after !== undefined && key[1] === after) continue;
    if (out.length === limit) break;
    out.push([key[1], value as ViewRowOf[V]]);
  }
  return out;
}

export class JournalReader implements ViewReader {
  private readonly root: RootDatabase;
  private readonly views: ViewsDb;
  private readonly entries: Database<Uint8Array, [string, number]>;
  private readonly ids: Database<[string, number], string>;

  private constructor(dir: string) {
    this.root = open({
      path: join(dir, JOURNAL_LAYOUT.file),
      maxDbs: JOURNAL_LAYOUT.maxDbs,
      readOnly: true,
    });
    this.views = this.root.openDB('views', {});
    this.entries = this.root.openDB('entries', { encoding: 'binary' });
    this.ids = this.root.openDB('ids', {});
  }

  /** Open the journal of `stateDir` (the journal actor created it before anyone reads). */
  static open(stateDir: string): JournalReader {
    const reader = new JournalReader(join(stateDir, JOURNAL_LAYOUT.dir));
    const format = reader.root.openDB<number, string>('meta', {}).get('format');
    if (format !== JOURNAL_LAYOUT.format) {
      void reader.close();
      throw E.ERR_STORAGE_FORMAT(
        `journal format ${String(format)} is not ${JOURNAL_LAYOUT.format}: this reader cannot read it`,
      );
    }
    return reader;
  }

  /**
   * Read the last commit from here on. lmdb-js keeps one read snapshot per
   * thread until a zero-delay timer resets it, and a message from another
   * thread can be handled before that timer fires: a reader told "entry X
   * was appended" could then read a snapshot from before X, decide nothing
   * changed, and never look again (a revoked grant stayed live for its whole
   * lease on a loaded machine). Whoever acts on such a notice calls this first.
   */
  refresh(): void {
    this.root.resetReadTxn();
  }

  view<V extends ViewName>(view: V, key: string): ViewRowOf[V] | undefined {
    return this.views.get([view, key]) as ViewRowOf[V] | undefined;
  }

  viewAll<V extends ViewName>(
    view: V,
    limit = MAX_ROWS,
    after?: string,
  ): Array<[string, ViewRowOf[V]]> {
    return viewPage(this.views, view, limit, after);
  }

  /** Every row of a view, in key order. */
  *rows<V extends ViewName>(view: V): Generator<[string, ViewRowOf[V]]> {
    for (const { key, value } of this.views.getRange({
      start: [view, ''],
      end: [view + '\u0000', ''],
    })) {
      yield [key[1], value as ViewRowOf[V]];
    }
  }

  byId(id: string): Entry | undefined {
    const at = this.ids.get(id);
    if (!at) return undefined;
    const bytes = this.entries.getBinary(at);
    return bytes ? decodeEntry(bytes) : undefined;
  }

  /** Entry ids starting with `prefix` (at most `limit`): resolving a short id. */
  idsWithPrefix(prefix: string, limit = 10): string[] {
    return idsWithPrefix(this.ids, prefix, limit);
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}

/** Keys of the ids database that start with `prefix`, in order, at most `limit`. */
export function idsWithPrefix(
  ids: Database<[string, number], string>,
  prefix: string,
  limit: number,
): string[] {
  const out: string[] = [];
  for (const key of ids.getKeys({ start: prefix, limit })) {
    if (!key.startsWith(prefix)) break;
    out.push(key);
  }
  return out;
}
