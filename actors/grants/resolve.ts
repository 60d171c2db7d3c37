/**
 * Names and short ids an operator types, resolved against the directory:
 * a provider by its node name (or DID, or a DID prefix), an entry by a
 * unique id prefix of 8+ hex digits. An ambiguous one is refused with the
 * candidates listed (ERR_AMBIGUOUS); nothing is guessed.
 */
import { E } from '../../runtime/errors.js';
import type { MembershipIndex } from '../../runtime/domain/membership.js';
import type { JournalViews } from './lookup.js';

/** Shortest id prefix accepted: 8 hex digits (32 bits) is unique in any real journal. */
export const MIN_ID_PREFIX = 8;
/** Candidates listed in an ERR_AMBIGUOUS message. */
const MAX_CANDIDATES = 10;
const DID = /^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$/;
const DID_PREFIX = /^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{4,43}$/;
const HEX_PREFIX = /^[0-9a-f]{8,64}$/;

export interface ResolverViews extends JournalViews {
  idsWithPrefix(prefix: string, limit?: number): string[];
}

/** A provider DID from a DID, a unique DID prefix, or a unique node name (members only in a closed mesh). */
export function resolveNode(
  views: ResolverViews,
  membership: MembershipIndex,
  text: string,
): string {
  if (DID.test(text)) return text;
  const byName: string[] = [];
  const byPrefix: string[] = [];
  const isPrefix = DID_PREFIX.test(text);
  for (const [did, rec] of views.rows('nodes')) {
    if (!membership.counts(did)) continue;
    if (rec.name === text) byName.push(did);
    if (isPrefix && did.startsWith(text)) byPrefix.push(did);
  }
  const found = byName.length > 0 ? byName : byPrefix;
  if (found.length === 1) return found[0]!;
  if (found.length === 0) throw E.ERR_NOT_FOUND(`no node named ${quote(text)} in the directory`);
  throw E.ERR_AMBIGUOUS(
    `${quote(text)} names ${found.length} nodes: ${found.slice(0, MAX_CANDIDATES).join(', ')}` +
      ' (use the DID)',
  );
}

/** A full entry id from a unique prefix of 8+ hex digits (a full id is taken as is). */
export function resolveId(views: ResolverViews, text: string): string {
  if (/^[0-9a-f]{64}$/.test(text)) return text;
  if (!HEX_PREFIX.test(text)) {
    throw E.ERR_BAD_REQUEST(
      `${quote(text)} is not an entry id or a prefix of ${MIN_ID_PREFIX}+ hex digits`,
    );
  }
  const ids = views.idsWithPrefix(text, MAX_CANDIDATES + 1);
  if (ids.length === 1) return ids[0]!;
  if (ids.length === 0) throw E.ERR_NOT_FOUND(`no entry id starts with ${text}`);
  throw E.ERR_AMBIGUOUS(
    `${text} is the prefix of ${ids.length > MAX_CANDIDATES ? 'more than ' + MAX_CANDIDATES : ids.length} ids: ${ids.slice(0, MAX_CANDIDATES).join(', ')}`,
  );
}

/** A name a peer chose, shown safely: JSON-quoted, so control characters cannot reach a terminal raw. */
function quote(text: string): string {
  return JSON.stringify(text.slice(0, 80));
}
