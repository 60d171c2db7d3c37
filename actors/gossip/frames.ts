/**
 * Gossip wire frames, protocol version 2 (a versioned contract: see docs,
 * Formats). One frame per WebSocket text message, a JSON object with a type
 * field `t`. Binary messages are not frames.
 *
 *   hello   {t, versions, did, nonce, mesh?, invite?}
 *                                         first frame each way; `mesh` the mesh id the
 *                                         sender belongs to, `invite` a token it redeems
 *   joinRes {t, ok, code?, reason?, mesh?, member?}
 *                                         the inviter's answer to a hello with an invite
 *   auth    {t, version, sig}             proof of the DID over the transcript (peer.ts)
 *   vv      {t, heads, more, ids?}        version vector, in chunks; more=false ends it
 *   have    {t, heads, ids?}              push notice: these feeds grew
 *   want    {t, author, from, to}         ask for a range of one feed
 *   entries {t, author, from, entries}    the answer: that feed's entries from `from`
 *   proof   {t, author, seq, entries}     equivocation proof: two signed entries
 *
 * The grant request flow (docs/design.md §6) rides the same authenticated link:
 *   grantHello {t, rid}                                 consumer: a nonce, please
 *   grantNonce {t, rid, nonce, expiresAt}               provider: single-use, short-lived
 *   grantReq   {t, rid, did, service, subscription, nonce, sig}
 *   grantRes   {t, rid, ok, code?, reason?, endpoint?, expires?, grant?}
 *
 * Decoding checks shape and counts only: entries are checked by the journal,
 * which trusts nobody. Everything else a peer sends is refused with
 * ERR_BAD_FRAME and costs it score.
 */
import { z } from 'zod';
import { badFrame, tooDeep } from '../../runtime/errors.js';
import { jsonDepth } from '../../runtime/json-depth.js';
import { MAX_TOKEN_CHARS } from '../../runtime/domain/invite.js';

/**
 * Protocol versions this build speaks, newest last. Version 2 changed the
 * handshake transcript (roles, channel binding); version 1's could be
 * reflected, so it is not spoken at all. Version 3 added the hello's `mesh`
 * and `invite` and the `joinRes` frame (the mesh directory); a version-2
 * node refuses a version-3 hello as a bad frame, so a mesh upgrades whole.
 */
export const PROTOCOL_VERSIONS: readonly number[] = [3];
/** Authors per vv/have frame: bounds a frame whatever the mesh's size. */
export const MAX_HEADS_PER_FRAME = 1000;
/**
 * Deepest JSON nesting in a frame. Real frames nest 4 levels (frame, list,
 * entry, body) plus what a body holds; anything deeper is refused before it
 * is parsed (a 100k-deep body overflowed the stack of everything after
 * JSON.parse).
 */
export const MAX_FRAME_DEPTH = 32;
/** Hard upper bound on entries per frame, whatever the config says. */
export const MAX_ENTRIES_LIMIT = 5000;

const did = z.string().regex(/^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$/);
const seq = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const heads = z
  .record(did, z.number().int().min(0).max(Number.MAX_SAFE_INTEGER))
  .refine((h) => Object.keys(h).length <= MAX_HEADS_PER_FRAME, {
    error: `at most ${MAX_HEADS_PER_FRAME} heads per frame`,
  });
const nonce = z.string().regex(/^[A-Za-z0-9_-]{43}$/);
const rid = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
const hexId = z.string().regex(/^[0-9a-f]{64}$/);
/**
 * Head entry ids (author → id of the entry at the head seq in `heads`), for
 * some or all of a frame's authors: two nodes at the same seq with different
 * ids hold an equivocation that comparing seqs alone would never reveal.
 */
const headIds = z.record(did, hexId).refine((h) => Object.keys(h).length <= MAX_HEADS_PER_FRAME, {
  error: `at most ${MAX_HEADS_PER_FRAME} ids per frame`,
});
const entryList = z.array(z.record(z.string(), z.unknown())).max(MAX_ENTRIES_LIMIT);

const frameSchema = z.discriminatedUnion('t', [
  z.strictObject({
    t: z.literal('hello'),
    versions: z.array(z.number().int().min(1).max(1000)).min(1).max(16),
    did,
    nonce,
    mesh: hexId.optional(),
    invite: z.string().max(MAX_TOKEN_CHARS).optional(),
  }),
  z.strictObject({
    t: z.literal('joinRes'),
    ok: z.boolean(),
    code: z.string().max(64).optional(),
    reason: z.string().max(512).optional(),
    mesh: hexId.optional(),
    member: hexId.optional(),
  }),
  z.strictObject({
    t: z.literal('auth'),
    version: z.number().int().min(1),
    sig: z.string().regex(/^[A-Za-z0-9_-]{86}$/),
  }),
  z.strictObject({ t: z.literal('vv'), heads, more: z.boolean(), ids: headIds.optional() }),
  z.strictObject({ t: z.literal('have'), heads, ids: headIds.optional() }),
  z.strictObject({ t: z.literal('want'), author: did, from: seq, to: seq }),
  z.strictObject({ t: z.literal('entries'), author: did, from: seq, entries: entryList }),
  z.strictObject({
    t: z.literal('proof'),
    author: did,
    seq,
    entries: z.tuple([z.record(z.string(), z.unknown()), z.record(z.string(), z.unknown())]),
  }),
  z.strictObject({ t: z.literal('grantHello'), rid }),
  z.strictObject({
    t: z.literal('grantNonce'),
    rid,
    nonce,
    expiresAt: z.number().int().min(0),
  }),
  z.strictObject({
    t: z.literal('grantReq'),
    rid,
    did,
    service: z.string().max(64),
    subscription: hexId,
    nonce,
    sig: z.string().regex(/^[A-Za-z0-9_-]{86}$/),
  }),
  z.strictObject({
    t: z.literal('grantRes'),
    rid,
    ok: z.boolean(),
    code: z.string().max(64).optional(),
    reason: z.string().max(512).optional(),
    endpoint: z
      .strictObject({
        ip: z.string().max(39),
        port: z.number().int().min(1).max(65535),
        proto: z.enum(['tcp', 'udp']),
      })
      .optional(),
    expires: z.number().int().min(0).optional(),
    grant: hexId.optional(),
  }),
]);

export type Frame = z.output<typeof frameSchema>;
export type FrameType = Frame['t'];
export type FrameOf<T extends FrameType> = Extract<Frame, { t: T }>;

/**
 * Decode one received message. `maxEntries` is this node's configured limit
 * (the peer learns it the hard way: a frame over it is refused).
 */
export function decodeFrame(data: Buffer | string, isBinary: boolean, maxEntries: number): Frame {
  if (isBinary) throw badFrame('binary message: frames are JSON text');
  const text = typeof data === 'string' ? data : data.toString('utf8');
  if (jsonDepth(text, MAX_FRAME_DEPTH) > MAX_FRAME_DEPTH) throw tooDeep('frame', MAX_FRAME_DEPTH);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw badFrame('frame is not JSON');
  }
  const parsed = frameSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw badFrame(`frame ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const frame = parsed.data;
  if (frame.t === 'entries' && frame.entries.length > maxEntries) {
    throw badFrame(`entries frame of ${frame.entries.length}; the limit is ${maxEntries}`);
  }
  if (frame.t === 'want' && frame.to < frame.from) throw badFrame('want.to is before want.from');
  return frame;
}

export function encodeFrame(frame: Frame): string {
  return JSON.stringify(frame);
}

/**
 * A version vector split into frames of at most MAX_HEADS_PER_FRAME authors,
 * each carrying the head ids it has in `ids` (a frame without any has no `ids`).
 */
export function vvFrames(
  all: Record<string, number>,
  ids?: ReadonlyMap<string, string>,
): Array<FrameOf<'vv'>> {
  const authors = Object.keys(all);
  const frames: Array<FrameOf<'vv'>> = [];
  for (let i = 0; i < authors.length || frames.length === 0; i += MAX_HEADS_PER_FRAME) {
    const heads: Record<string, number> = {};
    const chunkIds: Record<string, string> = {};
    let n = 0;
    for (const a of authors.slice(i, i + MAX_HEADS_PER_FRAME)) {
      heads[a] = all[a]!;
      const id = ids?.get(a);
      if (id !== undefined) {
        chunkIds[a] = id;
        n++;
      }
    }
    const more = i + MAX_HEADS_PER_FRAME < authors.length;
    frames.push(n > 0 ? { t: 'vv', heads, more, ids: chunkIds } : { t: 'vv', heads, more });
  }
  return frames;
}
