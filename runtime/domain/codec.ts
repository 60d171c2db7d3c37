/**
 * Journal entry codec, format version 1 — a versioned contract: entries are
 * signed and hashed over these bytes, stored as these bytes, and gossiped as
 * these objects. Change it only with a new `v` and a note in docs/formats.md.
 *
 * An entry is a JSON object with exactly these fields:
 *   v       1
 *   author  did:key of the Ed25519 key that signs the feed
 *   seq     1, 2, … (safe integer)
 *   prev    id of the author's entry seq-1, or null when seq = 1
 *   ts      author's clock, ms since the epoch (safe integer)
 *   kind    one of runtime/domain/entries.ts ENTRY_KINDS
 *   body    the kind's body (strings, safe integers, booleans, arrays, objects)
 *   sig     base64url (no padding) of the Ed25519 signature over the RFC 8785
 *           canonical JSON of the entry without `sig`
 * The entry's id is the lower-case hex BLAKE2b-256 of the canonical JSON of
 * the whole entry, `sig` included. Stored bytes are that canonical JSON.
 */
import { blake2b256Hex, canonicalBytes } from '../crypto/index.js';
import type { EntryKind } from './entries.js';

export const ENTRY_VERSION = 1;
/** The canonical form of one entry may not exceed this (a node record or offer is ~300 B). */
export const MAX_ENTRY_BYTES = 16 * 1024;

export interface Entry {
  v: 1;
  author: string;
  seq: number;
  prev: string | null;
  ts: number;
  kind: EntryKind;
  body: Record<string, unknown>;
  sig: string;
}

export type UnsignedEntry = Omit<Entry, 'sig'>;

const decoder = new TextDecoder('utf-8', { fatal: true });

/** The bytes a signature covers. */
export function signingBytes(entry: UnsignedEntry | Entry): Uint8Array {
  const { v, author, seq, prev, ts, kind, body } = entry;
  return canonicalBytes({ v, author, seq, prev, ts, kind, body });
}

/** The stored (and hashed) bytes of a signed entry. */
export function encodeEntry(entry: Entry): Uint8Array {
  return canonicalBytes(entry);
}

/** Parse stored bytes (trusted: they passed validation before they were stored). */
export function decodeEntry(bytes: Uint8Array): Entry {
  return JSON.parse(decoder.decode(bytes)) as Entry;
}

export function entryId(encoded: Uint8Array): string {
  return blake2b256Hex(encoded);
}

/**
 * The canonical JSON of an unsigned entry, assembled from the canonical JSON
 * of its body. The top-level fields need no escaping — author is a did:key
 * (base58), kind a known name, prev hex or null, seq/ts/v integers — and
 * their keys are written in RFC 8785 order, so this equals
 * `canonicalize(unsigned)` (a test holds it to that) at a fraction of the
 * cost: appends canonicalize each body once, for both the request digest and
 * the signature.
 */
export function unsignedCanonical(u: UnsignedEntry, bodyCanonical: string): string {
  const prev = u.prev === null ? 'null' : `"${u.prev}"`;
  return `{"author":"${u.author}","body":${bodyCanonical},"kind":"${u.kind}","prev":${prev},"seq":${u.seq},"ts":${u.ts},"v":${u.v}}`;
}

/**
 * Insert `sig` into an unsigned entry's canonical JSON: "sig" sorts between
 * "seq" and "ts", and the last `,"ts":` is the top-level one (only the ts
 * number and "v" follow it).
 */
export function signedCanonical(unsignedJson: string, sig: string): string {
  const at = unsignedJson.lastIndexOf(',"ts":');
  return `${unsignedJson.slice(0, at)},"sig":"${sig}"${unsignedJson.slice(at)}`;
}

export function sigToString(sig: Uint8Array): string {
  return Buffer.from(sig.buffer, sig.byteOffset, sig.byteLength).toString('base64url');
}

export function sigFromString(sig: string): Uint8Array {
  const buf = Buffer.from(sig, 'base64url');
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}
