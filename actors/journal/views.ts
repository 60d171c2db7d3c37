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
import type { CheckedEntry } from './validate.js';

export const VIEWS = [
  'nodes',
  'offers',
  'offersByService',
  'subscriptions',
  'approvals',
  'revocations',
  'grants',
  'ungrants',
] as const;
export type ViewName = (typeof VIEWS)[number];

export type ViewRow = [view: ViewName, key: string, value: Record<string, unknown>];

/** The rows one entry writes. */
export function viewRows({ entry, id }: CheckedEntry): ViewRow[] {
  const { author, ts, seq } = entry;
  const b = entry.body;
  switch (entry.kind) {
    case 'node':
      return [['nodes', author, { ...b, id, seq, ts }]];
    case 'offer':
      return [
        ['offers', id, { provider: author, ...b, ts }],
        ['offersByService', `${author} ${String(b.service)}`, { offer: id, ts }],
      ];
    case 'subscribe':
      return [['subscriptions', id, { subscriber: author, ...b, ts }]];
    case 'approve':
      return [['approvals', `${String(b.subscription)} ${author}`, { id, ts }]];
    case 'revoke':
      return [['revocations', `${String(b.target)} ${author}`, { id, ts }]];
    case 'grant':
      return [['grants', id, { provider: author, ...b, ts }]];
    case 'ungrant':
      return [['ungrants', `${String(b.grant)} ${author}`, { id, reason: b.reason, ts }]];
  }
}
