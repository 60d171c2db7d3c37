/**
 * State views: what the rest of the node asks the journal ("which offers
 * exist", "is this subscription approved"). Each entry maps to a few view
 * rows written in the same LMDB transaction as the entry.
 *
 * Convergence: every row is keyed so that only one feed can write it
 * (author in the key) or it is keyed by the entry's own id; within a feed,
 * entries apply in seq order. So the views are the same on every node
 * whatever order feeds arrive in. "Is X revoked / approved" is answered at
 * read time by looking up the row keyed by (X, X's author / provider), never
 * by mutating X's row, so a revoke that arrives before its target still
 * counts once the target arrives.
 */
import { ENTRY_KINDS, bodySchemas } from '../../runtime/domain/entries.js';
import type { EntryKind } from '../../runtime/domain/entries.js';
import type { CheckedEntry } from './validate.js';
import type { ViewName } from '../../runtime/domain/views.js';
import type { Entry } from '../../runtime/domain/codec.js';

export { VIEWS } from '../../runtime/domain/views.js';
export type { ViewName } from '../../runtime/domain/views.js';

export type ViewRow = [view: ViewName, key: string, value: Record<string, unknown>];

/**
 * Each kind's body fields, in schema order. Bodies are strict objects (no
 * other fields), so copying these is copying the body; it is several times
 * cheaper than an object spread of a body that came through structured clone
 * (measured ~0.1 µs against ~2 µs, and the spread's result was also slower
 * for lmdb-js to encode), and every row of a kind gets one key order.
 */
const BODY_FIELDS = Object.fromEntries(
  ENTRY_KINDS.map((k) => [k, Object.keys(bodySchemas[k].shape)]),
) as unknown as Record<EntryKind, readonly string[]>;

/** `head`, then the body's fields, then `tail`: the row as `{ ...head, ...body, ...tail }`. */
function row(
  kind: EntryKind,
  head: Record<string, unknown>,
  body: Record<string, unknown>,
  tail: Record<string, unknown>,
): Record<string, unknown> {
  for (const f of BODY_FIELDS[kind]) if (body[f] !== undefined) head[f] = body[f];
  for (const f in tail) head[f] = tail[f];
  return head;
}

/** The rows one entry writes. */
export function viewRows({ entry, id }: CheckedEntry): ViewRow[] {
  const { author, ts, seq, kind } = entry;
  const b = entry.body;
  switch (kind) {
    case 'node':
      return [['nodes', author, row(kind, {}, b, { id, seq, ts })]];
    case 'offer':
      return [
        ['offers', id, row(kind, { provider: author }, b, { ts })],
        ['offersByService', `${author} ${String(b.service)}`, { offer: id, ts }],
      ];
    case 'subscribe':
      return [['subscriptions', id, row(kind, { subscriber: author }, b, { ts })]];
    case 'approve':
      return [['approvals', `${String(b.subscription)} ${author}`, { id, ts }]];
    case 'revoke':
      return [['revocations', `${String(b.target)} ${author}`, { id, ts }]];
    case 'grant':
      return [['grants', id, row(kind, { provider: author }, b, { ts })]];
    case 'ungrant':
      return [['ungrants', `${String(b.grant)} ${author}`, { id, reason: b.reason, ts }]];
    case 'mesh':
      return [['meshes', id, row(kind, { founder: author }, b, { seq, ts })]];
    case 'member':
      return [
        ['members', id, row(kind, { author }, b, { seq, ts })],
        ['invites', `${String(b.invite)} ${author}`, { id, did: b.did, ts }],
      ];
    case 'member-revoke':
      return [['memberRevokes', id, row(kind, { author }, b, { seq, ts })]];
  }
}

/**
 * The view writes that undo `removed` entries of one feed: each row they
 * wrote goes, unless an entry that stays (`kept`, in seq order) wrote the
 * same key — a node record, an approval the removed ones had overwritten —
 * and then the last such row comes back.
 */
export function rowsAfterTruncation(
  removed: Iterable<{ entry: Entry; id: string }>,
  /** Read only if a removed entry wrote a row. */
  kept: () => Iterable<{ entry: Entry; id: string }>,
): Array<{ view: ViewName; key: string; row: Record<string, unknown> | undefined }> {
  const gone = new Map<
    string,
    { view: ViewName; key: string; row: Record<string, unknown> | undefined }
  >();
  for (const r of removed) {
    for (const [view, key] of viewRows(r as CheckedEntry)) {
      gone.set(`${view}\u0000${key}`, { view, key, row: undefined });
    }
  }
  if (gone.size === 0) return [];
  for (const k of kept()) {
    for (const [view, key, row] of viewRows(k as CheckedEntry)) {
      const slot = gone.get(`${view}\u0000${key}`);
      if (slot) slot.row = row;
    }
  }
  return [...gone.values()];
}
