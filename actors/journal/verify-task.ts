/**
 * Piscina task: check a chunk of untrusted entries — structure, schema,
 * size, id, and the signature of those flagged in `sigs` (all of them
 * without it; see signatureTips), exactly as `checkAndVerify` — off the
 * writer's thread. The writer then only chains and commits.
 *
 * `auditSignatures` (a named task): the signature audit of stored entries
 * that were taken on a later entry's signature. `verifyStored` (named):
 * `journal verify`'s check of stored entries.
 *
 * The answer is packed, so it crosses back to the writer as three values
 * instead of an object and a buffer per entry (each of which the writer's
 * thread would deserialize): every entry's stored bytes end to end in one
 * buffer, `ends[i]` the end of entry i's, and the ids as one string of
 * 64-character hex ids. The chunk stops at its first refusal and answers
 * only that one (a batch is all or nothing).
 */
import { loadFastHash } from '../../runtime/crypto/index.js';
import { decodeEntry, entryId } from '../../runtime/domain/codec.js';
import { E } from '../../runtime/errors.js';
import {
  badSignature,
  checkEntry,
  checkFields,
  checkSize,
  signatureValid,
  signatureValidBytes,
} from './validate.js';

export type ChunkResult =
  | { ok: true; bytes: Uint8Array; ends: Uint32Array; ids: string }
  | { ok: false; index: number; code: string; message: string };

const utf8 = new TextEncoder();
/** A UTF-16 code unit is at most 3 bytes of UTF-8. */
const MAX_BYTES_PER_CHAR = 3;
/** Starting room per entry (a node record or an offer is ~400 B); the buffer grows as needed. */
const BYTES_PER_ENTRY = 512;

// A pool thread hashes every entry it checks.
await loadFastHash();

export default function checkChunk({
  entries,
  offset,
  sigs,
}: {
  entries: unknown[];
  offset: number;
  /** 1: check this entry's signature; 0: a later entry's covers it. Absent: check all. */
  sigs?: Uint8Array;
}): ChunkResult {
  let out = new Uint8Array(entries.length * BYTES_PER_ENTRY);
  const ends = new Uint32Array(entries.length);
  let ids = '';
  let end = 0;
  for (let i = 0; i < entries.length; i++) {
    const where = `entries[${offset + i}]`;
    try {
      const { entry, json } = checkFields(entries[i], where);
      const room = end + json.length * MAX_BYTES_PER_CHAR;
      if (room > out.length) {
        const grown = new Uint8Array(Math.max(out.length * 2, room));
        grown.set(out.subarray(0, end));
        out = grown;
      }
      const { written } = utf8.encodeInto(json, out.subarray(end));
      checkSize(written, where);
      const bytes = out.subarray(end, end + written);
      const id = entryId(bytes);
      if ((sigs === undefined || sigs[i] === 1) && !signatureValidBytes(entry, bytes))
        throw badSignature(where);
      ids += id;
      end += written;
      ends[i] = end;
    } catch (err) {
      const e = err as { code?: string; message?: string };
      return {
        ok: false,
        index: offset + i,
        code: e.code ?? 'ERR_MALFORMED_ENTRY',
        message: e.message ?? String(err),
      };
    }
  }
  // A copy of the used part: a view would clone the whole buffer.
  return { ok: true, bytes: out.slice(0, end), ends, ids };
}

/**
 * The index of the first of `items` (stored entry bytes) whose own signature
 * is invalid, or -1. Stored bytes were checked on ingest for everything but
 * that, so they decode.
 */
export function auditSignatures({ items }: { items: Uint8Array[] }): number {
  for (let i = 0; i < items.length; i++) {
    const bytes = items[i]!;
    if (!signatureValidBytes(decodeEntry(bytes), bytes)) return i;
  }
  return -1;
}

/** A finding of `verifyStored`: the first entry of the chunk that is not what it should be. */
export interface StoredFinding {
  index: number;
  code: string;
  message: string;
}

/** Stands for "no prev" in `prevs` (an id is 64 hex digits; this is not one). */
export const NO_PREV = '-'.repeat(64);

/**
 * `journal verify`'s check of stored entries (named task): every entry of
 * the chunk — `bytes` end to end, entry i ending at `ends[i]`, expected at
 * `authors[i]` seq `seqs[i]` — decoded, checked field by field, re-encoded
 * canonically (the stored bytes must be that encoding), and its own
 * signature verified. Answers each entry's id and prev, 64 characters each,
 * so the writer's thread chains them without decoding anything; stops at
 * the first finding.
 */
export function verifyStored({
  bytes,
  ends,
  authors,
  seqs,
}: {
  bytes: Uint8Array;
  ends: Uint32Array;
  authors: string[];
  seqs: Uint32Array;
}): { ids: string; prevs: string; finding?: StoredFinding } {
  let ids = '';
  let prevs = '';
  let start = 0;
  for (let i = 0; i < ends.length; i++) {
    const stored = bytes.subarray(start, ends[i]);
    start = ends[i]!;
    try {
      // Decode inside the try: stored bytes that are not even JSON are a finding.
      const c = checkEntry(decodeEntry(stored), `${authors[i]}#${seqs[i]}`);
      if (entryId(stored) !== c.id || c.entry.seq !== seqs[i] || c.entry.author !== authors[i])
        throw E.ERR_MALFORMED_ENTRY('stored bytes are not this entry in canonical form');
      if (!signatureValid(c.entry, c.json)) throw E.ERR_BAD_SIGNATURE('invalid signature');
      ids += c.id;
      prevs += c.entry.prev ?? NO_PREV;
    } catch (err) {
      const e = err as { code?: string; message?: string };
      const code =
        typeof e.code === 'string' && e.code.startsWith('ERR_') ? e.code : 'ERR_MALFORMED_ENTRY';
      return { ids, prevs, finding: { index: i, code, message: e.message ?? String(err) } };
    }
  }
  return { ids, prevs };
}
