/**
 * `journal verify`: re-check every feed from its first entry — structure,
 * schema, signature, seq continuity, prev links, stored id index, head —
 * and report the first bad entry. Read-only: it works on a writer's or a
 * read-only handle.
 */
import { E } from '../../runtime/errors.js';
import { decodeEntry, entryId } from '../../runtime/domain/codec.js';
import type { Entry } from '../../runtime/domain/codec.js';
import type { VerifyReport } from '../../runtime/protocol/journal.js';
import type { JournalStore } from './store.js';
import { checkEntry, signatureValid } from './validate.js';

export type { VerifyReport };

/** Entries read per range call while walking a feed. */
const CHUNK = 200;

/**
 * Async: it yields to the event loop after every chunk, so a long verify on
 * the writer's thread never starves heartbeats or appends (a 30k-entry
 * journal takes seconds: every signature is checked).
 */
export async function verifyJournal(store: JournalStore): Promise<VerifyReport> {
  const heads = store.versionVector();
  let entries = 0;
  let feeds = 0;
  for (const author of Object.keys(heads).sort()) {
    feeds++;
    const head = store.head(author)!;
    let expectSeq = 1;
    let prevId: string | null = null;
    const fail = (seq: number, code: string, message: string): VerifyReport => ({
      ok: false,
      feeds,
      entries,
      author,
      seq,
      code,
      message,
    });
    while (expectSeq <= head.seq) {
      await new Promise((resolve) => setImmediate(resolve));
      const chunk = store.rangeBytes(author, expectSeq, head.seq, CHUNK);
      if (chunk.length === 0)
        return fail(expectSeq, 'ERR_SEQ_GAP', `entry ${expectSeq} is missing`);
      for (const { seq, bytes } of chunk) {
        if (seq !== expectSeq)
          return fail(expectSeq, 'ERR_SEQ_GAP', `entry ${expectSeq} is missing`);
        // Decode inside the try: stored bytes that are not even JSON are a
        // finding to report, not a reason for verify itself to fail.
        let entry: Entry;
        let id: string;
        try {
          entry = decodeEntry(bytes);
          const c = checkEntry(entry, `${author}#${seq}`);
          id = c.id;
          if (entryId(bytes) !== id || c.entry.seq !== seq || c.entry.author !== author) {
            throw E.ERR_MALFORMED_ENTRY('stored bytes are not this entry in canonical form');
          }
          if (!signatureValid(c.entry, c.json)) throw E.ERR_BAD_SIGNATURE('invalid signature');
        } catch (err) {
          const e = err as { code?: string; message?: string };
          const code = e.code ?? 'ERR_MALFORMED_ENTRY';
          return fail(
            seq,
            code.startsWith('ERR_') ? code : 'ERR_MALFORMED_ENTRY',
            e.message ?? String(err),
          );
        }
        if (entry.prev !== prevId)
          return fail(seq, 'ERR_PREV_MISMATCH', 'prev does not link to the previous entry');
        if (store.byId(id)?.seq !== seq) {
          return fail(seq, 'ERR_MALFORMED_ENTRY', 'id index does not point here');
        }
        prevId = id;
        expectSeq++;
        entries++;
      }
    }
    if (prevId !== head.id)
      return fail(head.seq, 'ERR_PREV_MISMATCH', 'head id does not match the last entry');
  }
  return { ok: true, feeds, entries };
}
