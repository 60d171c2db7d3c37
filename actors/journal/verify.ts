/**
 * `journal verify`: re-check every feed from its first entry — structure,
 * schema, canonical bytes, signature (on the verify pool, every core), seq
 * continuity, prev links, stored id index, head (on the writer's thread,
 * which only compares strings) — and report the first bad entry.
 * Read-only: it works on a writer's or a read-only handle.
 *
 * Chunks are cut across feeds (10,000 feeds of 10 entries are 100 chunks,
 * not 10,000 tasks), a few per pool thread in flight so no thread waits
 * for the writer to read the next one, and their answers are chained in
 * the order they were cut.
 */
import type { Piscina } from 'piscina';
import type { VerifyReport } from '../../runtime/protocol/journal.js';
import type { Progress } from '../../runtime/jobs.js';
import type { JournalStore } from './store.js';
import type { VerifyPool } from './verify-pool.js';
import { NO_PREV } from './verify-task.js';
import type { StoredFinding } from './verify-task.js';

export type { VerifyReport };

/**
 * Entries per pool task: large enough that a task's clone and wake-up
 * (~0.1 ms) are lost in its ~150 ms of signatures, small enough that the
 * progress moves and a cancel lands within a fraction of a second.
 */
const CHUNK = 1000;
/** Tasks in flight per pool thread: one running, one queued behind it. */
const IN_FLIGHT_PER_THREAD = 2;

export interface VerifyOptions {
  /** The journal's pool; without one, a pool for this verify alone (tests, tools). */
  pool?: VerifyPool;
  signal?: AbortSignal;
  progress?: Progress;
}

/** One chunk as cut: where each entry sits, and its stored bytes end to end. */
interface Chunk {
  authors: string[];
  seqs: Uint32Array;
  bytes: Uint8Array;
  ends: Uint32Array;
}

interface Checked {
  ids: string;
  prevs: string;
  finding?: StoredFinding;
}

/** A feed's walk, as the chaining side sees it. */
interface FeedState {
  author: string;
  head: { seq: number; id: string };
  prevId: string | null;
}

export async function verifyJournal(
  store: JournalStore,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  if (options.pool) return verifyOn(store, options.pool, options);
  const { VerifyPool } = await import('./verify-pool.js');
  const pool = new VerifyPool();
  try {
    return await verifyOn(store, pool, options);
  } finally {
    await pool.destroy();
  }
}

async function verifyOn(
  store: JournalStore,
  pool: VerifyPool,
  options: VerifyOptions,
): Promise<VerifyReport> {
  const heads = store.versionVector();
  const total = Object.values(heads).reduce((n, seq) => n + seq, 0);
  const piscina = await pool.get();
  const window = piscina.maxThreads * IN_FLIGHT_PER_THREAD;
  const cut = cutter(store, heads);
  const inFlight: Array<{ chunk: Chunk; answer: Promise<Checked> }> = [];
  const chain = new Chainer(store, cut.heads);
  options.progress?.(0, total);
  for (;;) {
    while (inFlight.length < window && !options.signal?.aborted) {
      const chunk = cut.next();
      if (!chunk) break;
      inFlight.push({ chunk, answer: check(piscina, chunk) });
    }
    const next = inFlight.shift();
    if (!next) break;
    const report = chain.take(next.chunk, await next.answer);
    if (report) {
      await settle(inFlight);
      return report;
    }
    options.progress?.(chain.entries, total);
    // A cancel lands here at the latest: the chunks still out are not chained.
    if (options.signal?.aborted) break;
  }
  if (options.signal?.aborted) {
    await settle(inFlight);
    throw options.signal.reason;
  }
  return chain.end(cut.gap) ?? { ok: true, feeds: chain.feeds, entries: chain.entries };
}

function check(piscina: Piscina, c: Chunk): Promise<Checked> {
  return piscina.run(
    { bytes: c.bytes, ends: c.ends, authors: c.authors, seqs: c.seqs },
    { name: 'verifyStored' },
  ) as Promise<Checked>;
}

/** Let the tasks still out finish (their answers are not needed) before the caller goes on. */
async function settle(inFlight: Array<{ answer: Promise<Checked> }>): Promise<void> {
  await Promise.allSettled(inFlight.map((f) => f.answer));
}

/**
 * Reads the feeds in order, CHUNK entries at a time. A feed whose stored
 * entries stop short of its head (or skip a seq) ends the cut there: the
 * chainer reports the gap once everything before it is checked.
 */
function cutter(store: JournalStore, vv: Readonly<Record<string, number>>) {
  const authors = Object.keys(vv).sort();
  let a = 0;
  let seq = 1;
  const state = {
    gap: undefined as { author: string; seq: number } | undefined,
    /**
     * Each feed's head as it was when the cut reached it: appends go on
     * while a verify runs, and the chain is checked against the head the
     * entries were read up to, not a later one.
     */
    heads: new Map<string, { seq: number; id: string }>(),
    next(): Chunk | undefined {
      const rows: Array<{ author: string; seq: number; bytes: Uint8Array }> = [];
      while (rows.length < CHUNK && a < authors.length && !state.gap) {
        const author = authors[a]!;
        let known = state.heads.get(author);
        if (!known) {
          // As of the verify's start (what its total counts); later appends are the next verify's.
          const at = vv[author]!;
          known = { seq: at, id: store.idAt(author, at) ?? '' };
          state.heads.set(author, known);
        }
        const head = known.seq;
        if (seq > head) {
          a++;
          seq = 1;
          continue;
        }
        const got = store.rangeBytes(author, seq, head, CHUNK - rows.length);
        if (got.length === 0 || got[0]!.seq !== seq) {
          state.gap = { author, seq };
          break;
        }
        for (const r of got) {
          if (r.seq !== seq) {
            state.gap = { author, seq };
            break;
          }
          rows.push({ author, seq, bytes: r.bytes });
          seq++;
        }
      }
      return rows.length === 0 ? undefined : pack(rows);
    },
  };
  return state;
}

function pack(rows: Array<{ author: string; seq: number; bytes: Uint8Array }>): Chunk {
  const size = rows.reduce((n, r) => n + r.bytes.length, 0);
  const bytes = new Uint8Array(size);
  const ends = new Uint32Array(rows.length);
  const seqs = new Uint32Array(rows.length);
  let end = 0;
  rows.forEach((r, i) => {
    bytes.set(r.bytes, end);
    end += r.bytes.length;
    ends[i] = end;
    seqs[i] = r.seq;
  });
  return { authors: rows.map((r) => r.author), seqs, bytes, ends };
}

/** The writer's side: links each checked entry to the one before it, feed by feed. */
class Chainer {
  feeds = 0;
  entries = 0;
  private feed: FeedState | undefined;

  constructor(
    private readonly store: JournalStore,
    /** The heads the cutter read each feed up to (it is always ahead of the chainer). */
    private readonly heads: ReadonlyMap<string, { seq: number; id: string }>,
  ) {}

  /** Chain one checked chunk; a report if it holds a finding. */
  take(chunk: Chunk, checked: Checked): VerifyReport | undefined {
    const n = checked.finding ? checked.finding.index : chunk.seqs.length;
    for (let i = 0; i < n; i++) {
      const author = chunk.authors[i]!;
      const seq = chunk.seqs[i]!;
      const ended = this.enter(author);
      if (ended) return ended;
      const id = checked.ids.slice(i * 64, i * 64 + 64);
      const prev = checked.prevs.slice(i * 64, i * 64 + 64);
      if ((prev === NO_PREV ? null : prev) !== this.feed!.prevId)
        return this.fail(seq, 'ERR_PREV_MISMATCH', 'prev does not link to the previous entry');
      const at = this.store.locate(id);
      if (at?.[0] !== author || at[1] !== seq)
        return this.fail(seq, 'ERR_MALFORMED_ENTRY', 'id index does not point here');
      this.feed!.prevId = id;
      this.entries++;
    }
    if (checked.finding) {
      const { index, code, message } = checked.finding;
      return this.enter(chunk.authors[index]!) ?? this.fail(chunk.seqs[index]!, code, message);
    }
    return undefined;
  }

  /** After the last chunk: the gap the cutter met, or the last feed's head check. */
  end(gap: { author: string; seq: number } | undefined): VerifyReport | undefined {
    if (gap) {
      return (
        this.enter(gap.author) ?? this.fail(gap.seq, 'ERR_SEQ_GAP', `entry ${gap.seq} is missing`)
      );
    }
    return this.endFeed();
  }

  /** Walk `author`'s feed from here: the feed walked before must have ended at its head. */
  private enter(author: string): VerifyReport | undefined {
    if (this.feed?.author === author) return undefined;
    const ended = this.endFeed();
    if (ended) return ended;
    this.feeds++;
    this.feed = { author, head: this.heads.get(author)!, prevId: null };
    return undefined;
  }

  /** The feed being walked is complete: its last entry must be its head. */
  private endFeed(): VerifyReport | undefined {
    const f = this.feed;
    if (f && f.prevId !== f.head.id)
      return this.fail(f.head.seq, 'ERR_PREV_MISMATCH', 'head id does not match the last entry');
    return undefined;
  }

  private fail(seq: number, code: string, message: string): VerifyReport {
    return {
      ok: false,
      feeds: this.feeds,
      entries: this.entries,
      author: this.feed!.author,
      seq,
      code,
      message,
    };
  }
}
